"""The TLS echo benchmark's certificate: a CA and a server certificate for 127.0.0.1
(ECDSA P-256), made once with the openssl command line tool into bench/.cache/tls/."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(os.path.dirname(HERE), ".cache", "tls")
CERT = os.path.join(DIR, "server.pem")
KEY = os.path.join(DIR, "server.key")


def ensure():
    """Make the files if they are missing; return (certificate, key) paths."""
    if os.path.exists(CERT) and os.path.exists(KEY):
        return CERT, KEY
    os.makedirs(DIR, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=DIR, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
            "-subj", "/CN=ringloop bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    openssl("req", "-new", *key, "-keyout", "server.key.tmp", "-out", "server.csr",
            "-subj", "/CN=localhost")
    with open(os.path.join(DIR, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "3650", "-out", "server.pem.tmp",
            "-extfile", "server.ext")
    os.replace(os.path.join(DIR, "server.key.tmp"), KEY)
    os.replace(os.path.join(DIR, "server.pem.tmp"), CERT)
    return CERT, KEY
