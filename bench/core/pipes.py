"""add_reader on pipes: for each of `pairs` pairs, two pipes connect two reader
callbacks, and one byte ping-pongs between them through the kernel: each
callback reads the byte and writes it into the other pipe. One operation is one
reader callback (one readiness event). With pairs > 1 several fds are ready in
the same loop iteration."""
import os

FLAGS = os.O_NONBLOCK | os.O_CLOEXEC


def prepare(loop, n, env, pairs=1):
    fds = []
    left = n
    done = 0  # ping-pongs that saw the count run out

    def make_reader(read_fd, write_fd):
        read = os.read
        write = os.write

        def on_readable():
            nonlocal left, done
            read(read_fd, 64)
            left -= 1
            if left > 0:
                write(write_fd, b"x")
            else:
                # This ping-pong ends here; the last one to end stops the loop.
                loop.remove_reader(read_fd)
                done += 1
                if done == pairs:
                    loop.stop()

        return on_readable

    starts = []
    for _ in range(pairs):
        a_r, a_w = os.pipe2(FLAGS)
        b_r, b_w = os.pipe2(FLAGS)
        fds += [a_r, a_w, b_r, b_w]
        loop.add_reader(a_r, make_reader(a_r, b_w))
        loop.add_reader(b_r, make_reader(b_r, a_w))
        starts.append(a_w)

    def go():
        for fd in starts:
            os.write(fd, b"x")
        loop.run_forever()
        return n - left  # every reader callback counts (left may end below 0)

    def cleanup():
        for fd in fds[0::2]:
            loop.remove_reader(fd)
        for fd in fds:
            os.close(fd)

    return go, cleanup
