"""test_map.py - "petrel map build|query|delete" as an administrator runs it.

Runs the real petrel binary from PETREL_BUILD_DIR against table files in the
test's tmp_path and checks output, exit codes (0 found, 1 absent, 2 failure,
64 usage), error messages naming file:line, and that a rebuild replaces the
.db file atomically while a reader that opened the old file keeps working.
"""
import os
import select
import subprocess

import pytest

TIMEOUT = 30


def petrel_bin():
    build = os.environ.get("PETREL_BUILD_DIR")
    if not build:
        pytest.fail("PETREL_BUILD_DIR is not set (run via make check-integration)")
    return os.path.join(build, "cmd", "petrel")


def pmap(tmp_path, *args, stdin=None):
    return subprocess.run([petrel_bin(), "-c", str(tmp_path), "map", *args],
                          input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=tmp_path)


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("dbtype", ["hash", "btree"])
def test_build_query_delete(tmp_path, dbtype):
    src = write(tmp_path / "virtual", "# virtual aliases\n"
                "Info@Example.com   alice@example.net\n"
                "sales@example.com  bob@example.net,\n"
                "    carol@example.net\n")
    spec = f"{dbtype}:{src}"
    r = pmap(tmp_path, "build", spec)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "virtual.db").exists()

    r = pmap(tmp_path, "query", "info@example.com", spec)
    assert (r.returncode, r.stdout) == (0, "alice@example.net\n")
    r = pmap(tmp_path, "query", "INFO@EXAMPLE.COM", spec)
    assert (r.returncode, r.stdout) == (0, "alice@example.net\n")
    r = pmap(tmp_path, "query", "sales@example.com", spec)
    assert r.stdout == "bob@example.net,    carol@example.net\n"
    r = pmap(tmp_path, "query", "nobody@example.com", spec)
    assert (r.returncode, r.stdout) == (1, "")

    r = pmap(tmp_path, "delete", "Info@example.com", spec)
    assert r.returncode == 0, r.stderr
    r = pmap(tmp_path, "delete", "info@example.com", spec)
    assert r.returncode == 1
    r = pmap(tmp_path, "query", "info@example.com", spec)
    assert r.returncode == 1
    r = pmap(tmp_path, "query", "sales@example.com", spec)
    assert r.returncode == 0


def test_keep_case_with_f(tmp_path):
    src = write(tmp_path / "cased", "MixedKey value\n")
    assert pmap(tmp_path, "build", "-f", f"hash:{src}").returncode == 0
    assert pmap(tmp_path, "query", "-f", "MixedKey", f"hash:{src}").returncode == 0
    assert pmap(tmp_path, "query", "-f", "mixedkey", f"hash:{src}").returncode == 1


def test_build_errors_name_file_and_line(tmp_path):
    src = write(tmp_path / "broken", "good value\n\n# comment\nbadline\n")
    r = pmap(tmp_path, "build", f"hash:{src}")
    assert r.returncode == 2
    assert f"{src}:4: expected format: key whitespace value" in r.stderr
    assert not (tmp_path / "broken.db").exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp." in p.name] == []

    r = pmap(tmp_path, "build", f"hash:{tmp_path}/missing")
    assert r.returncode == 2
    assert "missing: No such file or directory" in r.stderr

    r = pmap(tmp_path, "query", "k", "nosuch:/x")
    assert r.returncode == 2
    assert "unsupported dictionary type: nosuch (supported: btree cidr hash" in r.stderr

    r = pmap(tmp_path, "build", f"texthash:{src}")
    assert r.returncode == 2
    assert "nothing to build" in r.stderr

    write(tmp_path / "dup", "k first\nk second\n")
    r = pmap(tmp_path, "build", f"hash:{tmp_path}/dup")
    assert r.returncode == 0
    assert f"{tmp_path}/dup:2: duplicate entry" in r.stderr
    assert pmap(tmp_path, "query", "k", f"hash:{tmp_path}/dup").stdout == "first\n"


def test_usage(tmp_path):
    assert pmap(tmp_path).returncode == 64
    assert pmap(tmp_path, "frobnicate", "x").returncode == 64
    assert pmap(tmp_path, "query", "onlykey").returncode == 64
    assert pmap(tmp_path, "build").returncode == 64


def test_query_every_readable_type(tmp_path):
    write(tmp_path / "th", "alias target\n")
    write(tmp_path / "clients", "192.0.2.0/24 REJECT test net\n::1 OK\n")
    write(tmp_path / "re", "/^(.*)@example\\.org$/ user $1\n")
    cases = [
        ("ALIAS", f"texthash:{tmp_path}/th", "target"),
        ("192.0.2.77", f"cidr:{tmp_path}/clients", "REJECT test net"),
        ("::1", f"cidr:{tmp_path}/clients", "OK"),
        ("joe@example.org", f"regexp:{tmp_path}/re", "user joe"),
        ("joe@example.org", f"pcre:{tmp_path}/re", "user joe"),
        ("k2", "inline:{ k1=v1, { k2 = v two } }", "v two"),
        ("anything", "static:{ fixed answer }", "fixed answer"),
    ]
    for key, spec, want in cases:
        r = pmap(tmp_path, "query", key, spec)
        assert (r.returncode, r.stdout) == (0, want + "\n"), (spec, r.stderr)
    r = pmap(tmp_path, "query", "root", "unix:passwd.byname")
    assert r.returncode == 0 and r.stdout.startswith("root:")
    assert pmap(tmp_path, "query", "198.51.100.1", f"cidr:{tmp_path}/clients").returncode == 1

    write(tmp_path / "badcidr", "192.0.2.1/24 x\n")
    r = pmap(tmp_path, "query", "192.0.2.1", f"cidr:{tmp_path}/badcidr")
    assert r.returncode == 2
    assert f"{tmp_path}/badcidr:1: non-zero host bits" in r.stderr


def test_query_keys_from_stdin(tmp_path):
    src = write(tmp_path / "m", "a 1\nb 2\n")
    assert pmap(tmp_path, "build", f"hash:{src}").returncode == 0
    r = pmap(tmp_path, "query", "-", f"hash:{src}", stdin="a\nzz\nB\n")
    assert (r.returncode, r.stdout) == (0, "a\t1\nB\t2\n")
    r = pmap(tmp_path, "query", "-", f"hash:{src}", stdin="zz\n")
    assert (r.returncode, r.stdout) == (1, "")


def read_line(proc, timeout=TIMEOUT):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "reader did not answer in time"
    return proc.stdout.readline()


def test_atomic_rebuild_keeps_old_reader(tmp_path):
    src = write(tmp_path / "access", "example.com old\n")
    spec = f"hash:{src}"
    assert pmap(tmp_path, "build", spec).returncode == 0
    before = os.stat(tmp_path / "access.db").st_ino

    reader = subprocess.Popen([petrel_bin(), "map", "query", "-", spec],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              bufsize=1)
    try:
        reader.stdin.write("example.com\n")
        reader.stdin.flush()
        assert read_line(reader) == "example.com\told\n"

        write(src, "example.com new\nexample.net added\n")
        r = pmap(tmp_path, "build", spec)
        assert r.returncode == 0, r.stderr
        assert os.stat(tmp_path / "access.db").st_ino != before

        # The reader opened the old file before the rename and still reads it whole.
        reader.stdin.write("example.com\n")
        reader.stdin.flush()
        assert read_line(reader) == "example.com\told\n"
        reader.stdin.close()
        assert reader.wait(timeout=TIMEOUT) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait(timeout=TIMEOUT)

    r = pmap(tmp_path, "query", "example.com", spec)
    assert r.stdout == "new\n"
    assert pmap(tmp_path, "query", "example.net", spec).stdout == "added\n"


def test_db_keeps_source_read_permissions(tmp_path):
    src = write(tmp_path / "sasl_passwd", "[smtp.example.com]:587 user:secret\n")
    os.chmod(src, 0o600)
    assert pmap(tmp_path, "build", f"hash:{src}").returncode == 0
    assert os.stat(tmp_path / "sasl_passwd.db").st_mode & 0o777 == 0o600
    os.chmod(src, 0o644)
    assert pmap(tmp_path, "build", f"hash:{src}").returncode == 0
    assert os.stat(tmp_path / "sasl_passwd.db").st_mode & 0o777 == 0o644


def test_older_database_warns(tmp_path):
    src = write(tmp_path / "t", "k v\n")
    assert pmap(tmp_path, "build", f"hash:{src}").returncode == 0
    os.utime(tmp_path / "t.db", (1000000000, 1000000000))
    r = pmap(tmp_path, "query", "k", f"hash:{src}")
    assert r.returncode == 0
    assert f"database {src}.db is older than source file {src}" in r.stderr
