"""Sort AddressSanitizer/LeakSanitizer logs into ringloop's reports and the rest.

    python scripts/sanitizer_reports.py LOG_DIR

A report is one ASan error, or one leaked allocation ("Direct/Indirect leak of N
bytes"), with its stack. It is ringloop's when a frame of its stack is in one of
ringloop's extension modules (or in a source file of ringloop's); prints those in
full and a count of the others; exits 1 if there is any of ringloop's.
"""
import os
import re
import sys

OURS = re.compile(r"ringloop/_core\.|ringloop/_transport_bases\.|_core\.c:|/_backend/ring\.c:|"
                  r"transport_bases\.c:|\.pxi:|\.pyx:")
REPORT_START = re.compile(r"^(==\d+==ERROR: \w+Sanitizer|(Direct|Indirect) leak of )")


def reports(path):
    """The reports in one log file: lists of lines."""
    current = None
    with open(path, errors="replace") as f:
        for line in f:
            if REPORT_START.match(line):
                if current:
                    yield current
                current = [line]
            elif current is not None:
                if line.startswith("SUMMARY:"):
                    yield current
                    current = None
                else:
                    current.append(line)
    if current:
        yield current


def main(log_dir):
    ours, others, tool_failures = [], 0, []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), errors="replace") as f:
            if "Sanitizer has encountered a fatal error" in f.read():
                tool_failures.append(name)  # that process was not checked at exit
        for report in reports(os.path.join(log_dir, name)):
            if report[0].startswith("==") and "LeakSanitizer" in report[0]:
                continue  # the header of a leak listing; its leaks follow as reports
            if any(OURS.search(line) for line in report):
                ours.append((name, report))
            else:
                others += 1
    for name, report in ours:
        sys.stdout.write(f"--- {name}\n" + "".join(report))
    print(f"sanitizer reports: {len(ours)} attributable to ringloop, {others} others "
          f"(CPython's own allocations kept until exit, and the like) in {log_dir}")
    if tool_failures:
        print(f"the sanitizer itself failed in {len(tool_failures)} process(es), whose "
              f"leaks went unchecked: {', '.join(tool_failures)}")
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
