/*
 * test_qid.c - queue IDs and queue paths: known encodings, round trips,
 * strict validation, sorting by time, bucket paths for depths 0-4, and
 * collision-free creation by 4 processes x 2000 files in one queue.
 * Expected encodings were computed independently of the code under test.
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
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "qid.h"
#include "queue_path.h"
#include "strbuf.h"

static const struct {
    time_t sec;
    long usec;
    uint64_t ino;
    const char *want;
} format_cases[] = {
    {0, 0, 0, "00000000000"},
    {1, 1, 52, "000001000110"},
    {1700000000, 123456, 1234567, "4SVLCh0sf88mYg"},
    {19770609663, 999999, UINT64_MAX, "zzzzzz75pl2Rbkh2p1XY8H"},
};

static void test_format_known_values(void **state)
{
    char buf[QID_BUFSIZE];
    struct timeval tv;
    ino_t ino;
    size_t i;

    for (i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        tv.tv_sec = format_cases[i].sec;
        tv.tv_usec = format_cases[i].usec;
        assert_int_equal(qid_format(buf, &tv, (ino_t) format_cases[i].ino),
                         strlen(format_cases[i].want));
        assert_string_equal(buf, format_cases[i].want);
        assert_true(qid_valid(buf));
        memset(&tv, 0, sizeof(tv));
        assert_int_equal(qid_time(buf, &tv), 0);
        assert_int_equal(tv.tv_sec, format_cases[i].sec);
        assert_int_equal(tv.tv_usec, format_cases[i].usec);
        assert_int_equal(qid_inode(buf, &ino), 0);
        assert_int_equal(ino, format_cases[i].ino);
    }
}

static void test_format_out_of_range(void **state)
{
    static const struct timeval bad[] = {{-1, 0}, {19770609664, 0}, {0, 1000000}, {0, -1}};
    char buf[QID_BUFSIZE];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_int_equal(qid_format(buf, &bad[i], 1), -1);
        assert_int_equal(errno, ERANGE);
    }
}

static void test_validation(void **state)
{
    static const char *const good[] = {
        "00000000000", "000001000110", "4SVLCh0sf88mYg", "zzzzzz75pl2Rbkh2p1XY8H",
        "zzzzzz75plz",
    };
    static const char *const bad[] = {
        "",                         /* empty */
        "0000000000",               /* time only, no inode */
        "4SVLCh0sf8A",              /* vowel */
        "4SVLCh0sf8a",
        "4SVLCh0sf8e",
        "4SVLCh0sf8 1",             /* space */
        "4SVLCh0sf8/1",
        "4SVLCh0sf8.1",
        "4SVLCh0sf801",             /* leading zero in the inode */
        "zzzzzz75pm1",              /* 1000000 microseconds */
        "zzzzzzzzzz1",
        "zzzzzz75pl2Rbkh2p1XY8J",   /* inode 2^64 */
        "zzzzzz75plzzzzzzzzzzzzz",  /* 23 characters */
        ".tmp1234.5",
        "incoming",
    };
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!qid_valid(good[i]))
            fail_msg("\"%s\" should be valid", good[i]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (qid_valid(bad[i]))
            fail_msg("\"%s\" should be invalid", bad[i]);
    assert_int_equal(qid_time("4SVLCh0sf8A", &(struct timeval) {0, 0}), -1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorting IDs as strings sorts them by time, whatever the inode length. */
static void test_sorts_by_time(void **state)
{
    enum { N = 500 };
    static char ids[N][QID_BUFSIZE];
    char *sorted[N];
    struct timeval tv, prev;
    int i;

    srandom(42);
    for (i = 0; i < N; i++) {
        tv.tv_sec = 1000000000 + (time_t) (i / 3) * 7919;   /* ties in seconds */
        tv.tv_usec = (i % 3) * 333333 + (i % 7);
        assert_true(qid_format(ids[N - 1 - i], &tv, (ino_t) (random() % 100000000) << (i % 20)) > 0);
    }
    for (i = 0; i < N; i++)
        sorted[i] = ids[i];
    qsort(sorted, N, sizeof(sorted[0]), cmp_str);
    for (i = 0; i < N; i++) {
        assert_int_equal(qid_time(sorted[i], &tv), 0);
        if (i > 0)
            assert_true(timercmp(&prev, &tv, <));
        prev = tv;
    }
}

static void test_queue_path_depths(void **state)
{
    static const char *const want[] = {
        "incoming/0123456789BC",
        "incoming/9/0123456789BC",
        "incoming/9/8/0123456789BC",
        "incoming/9/8/7/0123456789BC",
        "incoming/9/8/7/6/0123456789BC",
    };
    static const char *const want_dir[] = {
        "incoming", "incoming/9", "incoming/9/8", "incoming/9/8/7", "incoming/9/8/7/6",
    };
    struct strbuf sb;
    int depth;

    strbuf_init(&sb, 0, 0);
    for (depth = 0; depth <= QUEUE_PATH_MAX_DEPTH; depth++) {
        assert_string_equal(queue_path(&sb, "incoming", "0123456789BC", depth), want[depth]);
        assert_string_equal(queue_path_dir(&sb, "incoming", "0123456789BC", depth),
                            want_dir[depth]);
    }
    strbuf_release(&sb);
    assert_true(queue_path_name_valid("deferred"));
    assert_false(queue_path_name_valid(""));
    assert_false(queue_path_name_valid(".."));
    assert_false(queue_path_name_valid("a/b"));
    assert_false(queue_path_name_valid("Incoming"));
}

static void expect_panic(const char *queue, const char *qid, int depth)
{
    struct strbuf sb;
    pid_t pid;
    int status;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, 2);
        strbuf_init(&sb, 0, 0);
        queue_path(&sb, queue, qid, depth);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("queue_path(%s, %s, %d) did not panic", queue, qid, depth);
}

static void test_queue_path_misuse_panics(void **state)
{
    expect_panic("incoming", "../../etc/x", 1);
    expect_panic("incoming", "0123456789", 0);
    expect_panic("../incoming", "0123456789BC", 0);
    expect_panic("incoming", "0123456789BC", -1);
    expect_panic("incoming", "0123456789BC", QUEUE_PATH_MAX_DEPTH + 1);
}

/* ---------------------------------------------------------- creation */

struct fixture {
    char dir[64];
    int dirfd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "test_qid.XXXXXX");
    if (mkdtemp(f->dir) == 0 || (f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY)) < 0
        || mkdirat(f->dirfd, "incoming", 0700) < 0)
        return -1;
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

    close(f->dirfd);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Counts queue files (valid IDs) and other names under dir, recursively. */
static void count_tree(int dirfd, const char *dir, int *ids, int *others)
{
    struct dirent *e;
    struct stat st;
    DIR *d;
    int fd;

    assert_true((fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY)) >= 0);
    assert_non_null(d = fdopendir(fd));
    while ((e = readdir(d)) != 0) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_int_equal(fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
        if (S_ISDIR(st.st_mode))
            count_tree(fd, e->d_name, ids, others);
        else if (qid_valid(e->d_name))
            (*ids)++;
        else
            (*others)++;
    }
    closedir(d);
}

static void test_create_one(void **state)
{
    struct fixture *f = *state;
    char qid[QID_BUFSIZE];
    struct timeval tv, now;
    struct strbuf path;
    struct stat st, st2;
    ino_t ino;
    int fd, ids = 0, others = 0;

    assert_int_equal(fchmodat(f->dirfd, "incoming", 0750, 0), 0);
    fd = queue_path_create(f->dirfd, "incoming", 2, 0600, qid);
    assert_true(fd >= 0);
    assert_true(qid_valid(qid));
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(qid_inode(qid, &ino), 0);
    assert_int_equal(ino, st.st_ino);
    assert_int_equal(qid_time(qid, &tv), 0);
    gettimeofday(&now, 0);
    assert_true(tv.tv_sec <= now.tv_sec && tv.tv_sec >= now.tv_sec - 5);
    /* It is at its bucket path, the bucket got the queue's mode, no temp is left. */
    strbuf_init(&path, 0, 0);
    assert_int_equal(fstatat(f->dirfd, queue_path(&path, "incoming", qid, 2), &st2, 0), 0);
    assert_int_equal(st2.st_ino, st.st_ino);
    assert_int_equal(fstatat(f->dirfd, queue_path_dir(&path, "incoming", qid, 2), &st2, 0), 0);
    assert_int_equal(st2.st_mode & 07777, 0750);
    count_tree(f->dirfd, "incoming", &ids, &others);
    assert_int_equal(ids, 1);
    assert_int_equal(others, 0);
    /* Writable through the descriptor. */
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    strbuf_release(&path);

    /* A missing queue directory fails cleanly. */
    errno = 0;
    assert_int_equal(queue_path_create(f->dirfd, "hold", 1, 0600, qid), -1);
    assert_int_equal(errno, ENOENT);
}

enum { PROCS = 4, PER_PROC = 2000 };

/* Child: creates PER_PROC files and writes their IDs to ids.N, one per line. */
static void create_many(int dirfd, int n)
{
    char qid[QID_BUFSIZE], name[32];
    struct timeval tv, prev = {0, 0};
    FILE *out;
    int i, fd;

    snprintf(name, sizeof(name), "ids.%d", n);
    if ((fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0
        || (out = fdopen(fd, "w")) == 0)
        _exit(2);
    for (i = 0; i < PER_PROC; i++) {
        if ((fd = queue_path_create(dirfd, "incoming", 1, 0600, qid)) < 0)
            _exit(3);
        close(fd);
        /* One process's IDs never go back in time. */
        if (qid_time(qid, &tv) < 0 || timercmp(&tv, &prev, <))
            _exit(4);
        prev = tv;
        fprintf(out, "%s\n", qid);
    }
    _exit(fclose(out) == 0 ? 0 : 5);
}

static void test_unique_across_processes(void **state)
{
    struct fixture *f = *state;
    char **all = calloc(PROCS * PER_PROC, sizeof(char *));
    char line[64], name[32];
    struct strbuf path;
    struct stat st;
    pid_t pids[PROCS];
    FILE *in;
    int i, n = 0, status, ids = 0, others = 0, fd;

    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            create_many(f->dirfd, i);
    }
    for (i = 0; i < PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("creator %d failed with status %#x", i, status);
    }
    strbuf_init(&path, 0, 0);
    for (i = 0; i < PROCS; i++) {
        snprintf(name, sizeof(name), "ids.%d", i);
        assert_true((fd = openat(f->dirfd, name, O_RDONLY)) >= 0);
        assert_non_null(in = fdopen(fd, "r"));
        while (fgets(line, sizeof(line), in)) {
            line[strcspn(line, "\n")] = '\0';
            assert_true(qid_valid(line));
            assert_int_equal(fstatat(f->dirfd, queue_path(&path, "incoming", line, 1), &st, 0), 0);
            assert_int_equal(st.st_nlink, 1);
            assert_true(n < PROCS * PER_PROC);
            all[n++] = strdup(line);
        }
        fclose(in);
    }
    assert_int_equal(n, PROCS * PER_PROC);
    qsort(all, (size_t) n, sizeof(all[0]), cmp_str);
    for (i = 1; i < n; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            fail_msg("duplicate queue ID %s", all[i]);
    count_tree(f->dirfd, "incoming", &ids, &others);
    assert_int_equal(ids, PROCS * PER_PROC);
    assert_int_equal(others, 0);
    for (i = 0; i < n; i++)
        free(all[i]);
    free(all);
    strbuf_release(&path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known_values),
        cmocka_unit_test(test_format_out_of_range),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_sorts_by_time),
        cmocka_unit_test(test_queue_path_depths),
        cmocka_unit_test(test_queue_path_misuse_panics),
        cmocka_unit_test_setup_teardown(test_create_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_across_processes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
