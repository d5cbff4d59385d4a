/*
 * test_safe_file.c - symlinks, hard links, directories, FIFOs and foreign
 * owners are refused; O_EXCL creation; atomic replacement leaves the old or
 * the new contents, never a mixture, even when the writer is killed; mkdir
 * -p modes; size-limited reads. Each test runs in its own fresh directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "safe_file.h"
#include "strbuf.h"

struct fixture {
    char dir[64];
    char old_cwd[4096];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "test_safe_file.XXXXXX");
    if (getcwd(f->old_cwd, sizeof(f->old_cwd)) == 0 || mkdtemp(f->dir) == 0
        || chdir(f->dir) < 0)
        return -1;
    umask(077);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (chdir(f->old_cwd) < 0)
        return -1;
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(close(fd), 0);
}

static size_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (size_t) st.st_size;
}

/* Each refused kind of file, with the errno a caller sees. */
static void test_open_refusals(void **state)
{
    static const struct {
        const char *path;
        int flags;
        int err;
        const char *why;
    } cases[] = {
        {"link", O_RDONLY, ELOOP, "link: is a symbolic link"},
        {"dangling", O_WRONLY, ELOOP, "dangling: is a symbolic link"},
        {"hard", O_RDONLY, EMLINK, "hard: has more than one link"},
        {"target", O_WRONLY | O_TRUNC, EMLINK, "target: has more than one link"},
        {"dir", O_RDONLY, EISDIR, "dir: is a directory"},
        {"fifo", O_RDONLY, EINVAL, "fifo: is not a regular file"},
        {"fifo", O_WRONLY, ENXIO, NULL},        /* no reader: refused by open itself */
        {"missing", O_RDONLY, ENOENT, NULL},
    };
    struct strbuf why;
    size_t i;
    int fd;

    strbuf_init(&why, 0, 0);
    write_file("target", "precious");
    assert_int_equal(symlink("target", "link"), 0);
    assert_int_equal(symlink("nowhere", "dangling"), 0);
    assert_int_equal(link("target", "hard"), 0);
    assert_int_equal(mkdir("dir", 0700), 0);
    assert_int_equal(mkfifo("fifo", 0600), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&why);
        errno = 0;
        fd = safe_file_open(AT_FDCWD, cases[i].path, cases[i].flags, SAFE_FILE_ANY_OWNER,
                            0, &why);
        if (fd != -1 || errno != cases[i].err)
            fail_msg("%s: got fd %d errno %d (%s), want errno %d", cases[i].path, fd, errno,
                     why.data, cases[i].err);
        if (cases[i].why)
            assert_string_equal(why.data, cases[i].why);
    }
    /* The hard-linked target was not truncated by the refused O_TRUNC open. */
    assert_int_equal(file_size("target"), 8);
    assert_int_equal(access("nowhere", F_OK), -1);
    strbuf_release(&why);
}

static void test_open_owner_and_flags(void **state)
{
    struct stat st;
    char buf[32];
    int fd;

    write_file("f", "hello");
    fd = safe_file_open(AT_FDCWD, "f", O_RDONLY, getuid(), &st, 0);
    assert_true(fd >= 0);
    assert_int_equal(st.st_size, 5);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    errno = 0;
    assert_int_equal(safe_file_open(AT_FDCWD, "f", O_RDONLY, getuid() + 1, 0, 0), -1);
    assert_int_equal(errno, EPERM);

    /* O_APPEND is kept, O_TRUNC applies after the checks. */
    fd = safe_file_open(AT_FDCWD, "f", O_WRONLY | O_APPEND, SAFE_FILE_ANY_OWNER, 0, 0);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, "!", 1), 0);
    close(fd);
    assert_int_equal(file_size("f"), 6);
    fd = safe_file_open(AT_FDCWD, "f", O_RDWR | O_TRUNC, SAFE_FILE_ANY_OWNER, 0, 0);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 0);
    close(fd);
}

static void test_create_exclusive(void **state)
{
    struct strbuf why;
    struct stat st;
    int fd;

    strbuf_init(&why, 0, 0);
    fd = safe_file_create(AT_FDCWD, "new", O_WRONLY, 0640, &why);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);         /* despite umask 077 */
    close(fd);
    errno = 0;
    assert_int_equal(safe_file_create(AT_FDCWD, "new", O_WRONLY, 0600, &why), -1);
    assert_int_equal(errno, EEXIST);
    assert_non_null(strstr(why.data, "new"));
    /* A dangling symlink is not followed to create its target. */
    assert_int_equal(symlink("victim", "trap"), 0);
    errno = 0;
    assert_int_equal(safe_file_create(AT_FDCWD, "trap", O_WRONLY, 0600, 0), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(access("victim", F_OK), -1);
    strbuf_release(&why);
}

static void test_read_limit(void **state)
{
    struct strbuf out, why;

    strbuf_init(&out, 0, 0);
    strbuf_init(&why, 0, 0);
    write_file("ten", "0123456789");
    write_file("empty", "");
    assert_int_equal(safe_file_read(AT_FDCWD, "ten", getuid(), 10, &out, &why), 0);
    assert_int_equal(out.len, 10);
    assert_string_equal(out.data, "0123456789");
    errno = 0;
    assert_int_equal(safe_file_read(AT_FDCWD, "ten", getuid(), 9, &out, &why), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(out.len, 0);
    assert_string_equal(why.data, "ten: larger than 9 bytes");
    assert_int_equal(safe_file_read(AT_FDCWD, "empty", getuid(), 0, &out, &why), 0);
    assert_int_equal(out.len, 0);
    errno = 0;
    assert_int_equal(safe_file_read(AT_FDCWD, "ten", getuid(), 0, &out, &why), -1);
    assert_int_equal(errno, EFBIG);
    strbuf_release(&out);
    strbuf_release(&why);
}

/* Names in the current directory that start with prefix. */
static int count_entries(const char *prefix)
{
    DIR *d = opendir(".");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != 0)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_replace_basic(void **state)
{
    struct strbuf out, why;
    struct stat st;

    strbuf_init(&out, 0, 0);
    strbuf_init(&why, 0, 0);
    assert_int_equal(safe_file_replace(AT_FDCWD, "main.cf", "a = 1\n", 6, 0644, &why), 0);
    assert_int_equal(safe_file_read(AT_FDCWD, "main.cf", getuid(), 100, &out, &why), 0);
    assert_string_equal(out.data, "a = 1\n");
    assert_int_equal(stat("main.cf", &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(mkdir("sub", 0700), 0);
    assert_int_equal(safe_file_replace(AT_FDCWD, "sub/x", "b", 1, 0600, &why), 0);
    assert_int_equal(safe_file_replace(AT_FDCWD, "main.cf", "a = 2\n", 6, 0600, &why), 0);
    assert_int_equal(safe_file_read(AT_FDCWD, "main.cf", getuid(), 100, &out, &why), 0);
    assert_string_equal(out.data, "a = 2\n");
    assert_int_equal(count_entries(".main.cf"), 0);

    /* Failures leave nothing behind. */
    assert_int_equal(mkdir("isdir", 0700), 0);
    assert_int_equal(safe_file_replace(AT_FDCWD, "isdir", "x", 1, 0600, &why), -1);
    assert_int_equal(count_entries(".isdir"), 0);
    errno = 0;
    assert_int_equal(safe_file_replace(AT_FDCWD, "nodir/x", "x", 1, 0600, &why), -1);
    assert_int_equal(errno, ENOENT);
    strbuf_release(&out);
    strbuf_release(&why);
}

#define BIG (256 * 1024)

/* Readers and a killed writer only ever see one complete version. */
static void test_replace_never_half(void **state)
{
    static char a[BIG], b[BIG], got[BIG + 1];
    struct timespec pause = {0, 3 * 1000 * 1000};
    pid_t pid;
    ssize_t n;
    int i, fd, round, status;

    memset(a, 'a', BIG);
    memset(b, 'b', BIG);
    assert_int_equal(safe_file_replace(AT_FDCWD, "f", a, BIG, 0600, 0), 0);
    for (round = 0; round < 5; round++) {
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (i = 0; i < 100000; i++)
                if (safe_file_replace(AT_FDCWD, "f", i % 2 ? a : b, BIG, 0600, 0) < 0)
                    _exit(1);
            _exit(0);
        }
        for (i = 0; i < 50; i++) {
            assert_true((fd = open("f", O_RDONLY)) >= 0);
            n = read(fd, got, sizeof(got));
            close(fd);
            if (n != BIG || (memcmp(got, a, BIG) != 0 && memcmp(got, b, BIG) != 0))
                fail_msg("round %d read %d: %zd bytes, mixed or short", round, i, n);
        }
        nanosleep(&pause, 0);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(file_size("f"), BIG);
        assert_true((fd = open("f", O_RDONLY)) >= 0);
        assert_int_equal(read(fd, got, sizeof(got)), BIG);
        close(fd);
        assert_true(memcmp(got, a, BIG) == 0 || memcmp(got, b, BIG) == 0);
    }
}

static void test_mkdirs(void **state)
{
    static const char *const made[] = {"a", "a/b", "a/b/c"};
    struct strbuf why;
    struct stat st;
    size_t i;

    strbuf_init(&why, 0, 0);
    assert_int_equal(safe_file_mkdirs(AT_FDCWD, "a/b//c/", 0750, &why), 0);
    for (i = 0; i < 3; i++) {
        assert_int_equal(stat(made[i], &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
    }
    /* Existing directories are fine and keep their mode. */
    assert_int_equal(chmod("a", 0700), 0);
    assert_int_equal(safe_file_mkdirs(AT_FDCWD, "a/b/c", 0755, &why), 0);
    assert_int_equal(stat("a", &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    /* A file in the way. */
    write_file("file", "");
    errno = 0;
    assert_int_equal(safe_file_mkdirs(AT_FDCWD, "file/x", 0700, &why), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_string_equal(why.data, "file: exists and is not a directory");
    errno = 0;
    assert_int_equal(safe_file_mkdirs(AT_FDCWD, "", 0700, &why), -1);
    assert_int_equal(errno, ENOENT);
    strbuf_release(&why);
}

static void test_sync(void **state)
{
    int fd;

    assert_int_equal(safe_file_sync_dir(AT_FDCWD, "."), 0);
    write_file("f", "x");
    errno = 0;
    assert_int_equal(safe_file_sync_dir(AT_FDCWD, "f"), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_true((fd = open("f", O_RDONLY)) >= 0);
    assert_int_equal(safe_file_sync(fd), 0);
    close(fd);
    assert_int_equal(safe_file_sync(-1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_owner_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_never_half, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
