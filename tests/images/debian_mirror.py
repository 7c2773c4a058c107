"""Print the Debian archive URI this machine's apt is configured with.

Test hosts are built with debootstrap from the same mirror the machine already
uses, so the project never names a package registry itself. Reads one-line
(`deb URI SUITE ...`) and deb822 (`URIs:` / `Suites:`) sources and prints the
first URI that serves the main archive (not -security / -updates suites).
"""
import glob
import sys

SOURCES = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + sorted(
    glob.glob("/etc/apt/sources.list.d/*.sources"))


def _is_main_suite(suite):
    return "-" not in suite and "/" not in suite


def one_line_entries(text):
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "deb":
            rest = words[1:]
            if rest[0].startswith("["):  # options like [arch=amd64 signed-by=...]
                while rest and not rest[0].endswith("]"):
                    rest = rest[1:]
                rest = rest[1:]
            if len(rest) >= 2:
                yield rest[0], [rest[1]]


def deb822_entries(text):
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("uris"):
            for uri in fields["uris"]:
                yield uri, fields.get("suites", [])


def find_mirror():
    for path in SOURCES:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        parse = deb822_entries if path.endswith(".sources") else one_line_entries
        for uri, suites in parse(text):
            if uri.rstrip("/").endswith("/debian") and any(_is_main_suite(s) for s in suites):
                return uri
    return None


def main():
    mirror = find_mirror()
    if not mirror:
        sys.stderr.write("no Debian archive found in /etc/apt/sources.list{,.d/*}: "
                         "configure apt with a Debian mirror first\n")
        return 1
    print(mirror)
    return 0


if __name__ == "__main__":
    sys.exit(main())
