"""petrel_instance.py - a private Petrel instance for integration tests.

Each instance lives in its own directory: config/ (main.cf, master.cf), queue/,
data/, libexec/ (symlinks to the programs in the build tree, so no "make install"
is needed), and maillog (maillog_file). Programs come from PETREL_BUILD_DIR:
BUILD/master/master, BUILD/<dir>/<dir> for every daemon directory that has a
program of its own name (smtpd/smtpd, qmgr/qmgr, ...), and every executable in
BUILD/tests/helpers/. Every wait is bounded; stop() always leaves no process behind.
"""
import os
import pwd
import re
import signal
import socket
import subprocess
import time

MAIL_OWNER = "petrel"
SETGID_GROUP = "petreldrop"


def build_dir():
    d = os.environ.get("PETREL_BUILD_DIR")
    if not d:
        raise RuntimeError("PETREL_BUILD_DIR is not set (run via make check-integration)")
    return os.path.abspath(d)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Polls predicate until it returns a true value or timeout passes; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def ensure_mail_users():
    """As root, creates the mail_owner user and setgid_group group when missing."""
    if os.geteuid() != 0:
        return
    subprocess.run(["groupadd", "-f", "-r", SETGID_GROUP], check=True, timeout=30)
    try:
        pwd.getpwnam(MAIL_OWNER)
    except KeyError:
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                        "-U", MAIL_OWNER], check=True, timeout=30)


def process_children(pid):
    """Pids whose parent is pid (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


class PetrelInstance:
    def __init__(self, base):
        self.base = str(base)
        self.build = build_dir()
        self.config_dir = os.path.join(self.base, "config")
        self.queue_dir = os.path.join(self.base, "queue")
        self.data_dir = os.path.join(self.base, "data")
        self.libexec = os.path.join(self.base, "libexec")
        self.maillog = os.path.join(self.base, "maillog")
        self.petrel_bin = os.path.join(self.build, "cmd", "petrel")
        for d in (self.config_dir, self.libexec):
            os.makedirs(d, exist_ok=True)
        if os.geteuid() == 0:
            self._open_path_for_workers()
        self._link_programs()
        self.main_cf = {}
        self.write_main_cf()
        self.write_master_cf("")

    def _open_path_for_workers(self):
        """Workers run as mail_owner: every directory down to base must be searchable."""
        path = self.base
        while path not in ("/", "/tmp", ""):
            st = os.stat(path)
            os.chmod(path, st.st_mode | 0o711)
            path = os.path.dirname(path)

    def _link_programs(self):
        progs = {"master": os.path.join(self.build, "master", "master")}
        for d in os.listdir(self.build):
            cand = os.path.join(self.build, d, d)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                progs.setdefault(d, cand)
        if "smtp" in progs:
            progs.setdefault("lmtp", progs["smtp"])    # one client, two protocols
        helpers = os.path.join(self.build, "tests", "helpers")
        if os.path.isdir(helpers):
            for name in os.listdir(helpers):
                p = os.path.join(helpers, name)
                if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in name:
                    progs.setdefault(name, p)
        for name, target in progs.items():
            link = os.path.join(self.libexec, name)
            if not os.path.lexists(link):
                os.symlink(target, link)

    # --- configuration -------------------------------------------------------
    def base_params(self):
        params = {
            "config_directory": self.config_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": self.libexec,
            "maillog_file": self.maillog,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
        }
        if os.geteuid() == 0:
            params["mail_owner"] = MAIL_OWNER
            params["setgid_group"] = SETGID_GROUP
        else:
            params["mail_owner"] = pwd.getpwuid(os.getuid()).pw_name
        return params

    def write_main_cf(self, extra=None, raw=""):
        """Writes main.cf from the base parameters, extra overrides and raw text."""
        params = self.base_params()
        params.update(self.main_cf)
        params.update(extra or {})
        text = "".join("%s = %s\n" % (k, v) for k, v in params.items()) + raw
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            f.write(text)

    def write_master_cf(self, text):
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write(text)

    # --- control -------------------------------------------------------------
    def petrel(self, *args, timeout=60, check=False):
        return subprocess.run([self.petrel_bin, "-c", self.config_dir] + list(args),
                              capture_output=True, text=True, timeout=timeout, check=check)

    def start(self):
        r = self.petrel("start")
        if r.returncode != 0:
            raise AssertionError("petrel start failed (%d): %s%s\n--- log:\n%s"
                                 % (r.returncode, r.stdout, r.stderr, self.log()))
        return r

    def stop(self):
        return self.petrel("stop")

    def reload(self):
        return self.petrel("reload")

    def start_smtpd(self, main=None, smtpd_opts="", extra_master=""):
        """Starts the instance with smtpd on a free 127.0.0.1 port and the cleanup
        service; returns the port (also kept as self.smtp_port).
        main: extra main.cf parameters; smtpd_opts: text after "smtpd" on its
        master.cf line (e.g. "-o smtpd_timeout=2s"); extra_master: more lines."""
        port = free_port()
        text = "127.0.0.1:%d inet n - n - - smtpd %s\n" % (port, smtpd_opts)
        text += "cleanup unix n - n - 0 cleanup\n" + extra_master
        self.write_master_cf(text)
        if main:
            self.main_cf.update(main)
        self.write_main_cf()
        self.start()
        self.smtp_port = port
        return port

    def master_pid(self):
        """The pid in master.pid if that process is alive, else None."""
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0 or not os.path.exists("/proc/%d" % pid):
            return None
        return pid

    def workers(self):
        pid = self.master_pid()
        return process_children(pid) if pid else []

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        """Waits until the mail log matches the regular expression; returns the match."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout)

    def teardown(self):
        """Stops the instance whatever state it is in; kills as the last resort."""
        pid = self.master_pid()
        if pid is None:
            return
        kids = process_children(pid)
        try:
            self.petrel("stop", timeout=40)
        except subprocess.TimeoutExpired:
            pass
        if self.master_pid():
            for p in [pid] + kids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: self.master_pid() is None, timeout=5)
        for p in kids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def connect(port, timeout=5.0):
    """A connected socket to 127.0.0.1:port with a read timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def ask(port, line, timeout=5.0):
    """Sends one line to an echo-like service and returns the answer line."""
    with connect(port, timeout) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
        return data.decode().rstrip("\n")
