/*
 * test_mailbox.c - the mailbox writer: byte-exact Maildir files (tmp/ -> new/,
 * unique names, missing directories made), mbox From_ lines and ">From "
 * escaping (also across the writer's read boundary), size limits, write
 * failures (RLIMIT_FSIZE) and read failures leave the mbox at its old size
 * and no Maildir file behind, symlinks and hard links are refused, locks are
 * waited for within their bound, stale dot-locks are broken, and two
 * concurrent writers to one mbox give two intact messages. Each test runs in
 * its own fresh directory; message content comes from a memfd, as from a
 * queue file.
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
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "deliver_request.h"
#include "mailbox.h"
#include "params.h"
#include "strbuf.h"

#define PREPEND "Return-Path: <sender@example.com>\nDelivered-To: rcpt@example.org\n"

struct fixture {
    char dir[64];
    char old_cwd[4096];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "test_mailbox.XXXXXX");
    if (getcwd(f->old_cwd, sizeof(f->old_cwd)) == 0 || mkdtemp(f->dir) == 0
        || chdir(f->dir) < 0)
        return -1;
    umask(022);
    var_deliver_lock_attempts = 20;
    var_deliver_lock_delay = 1;
    var_stale_lock_time = 500;
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
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

/* A request whose content is data, behind some envelope bytes in a memfd. */
static void make_request(struct deliver_request *req, const char *sender, const void *data,
                         size_t len)
{
    static const char envelope[] = "PQF1 envelope records before the content";
    int fd = memfd_create("queue-file", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, envelope, sizeof(envelope)), (ssize_t) sizeof(envelope));
    if (len > 0)
        assert_int_equal(write(fd, data, len), (ssize_t) len);
    assert_int_equal(write(fd, "E", 1), 1);
    memset(req, 0, sizeof(*req));
    req->fd = fd;
    req->queue_name = "active";
    req->queue_id = "TESTQUEUEID";
    req->transport = "virtual";
    req->nexthop = "example.org";
    req->sender = sender;
    req->content_offset = sizeof(envelope);
    req->content_length = (off_t) len;
}

static void free_request(struct deliver_request *req)
{
    close(req->fd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    rewind(fp);
    buf = malloc((size_t) n + 1);
    assert_int_equal(fread(buf, 1, (size_t) n, fp), (size_t) n);
    buf[n] = 0;
    fclose(fp);
    *len = (size_t) n;
    return buf;
}

static void spew(const char *path, const char *data)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
    assert_int_equal(fclose(fp), 0);
}

/* The names in dir (not . and ..), at most max; returns the count. */
static int list_dir(const char *dir, char names[][256], int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n < max)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void assert_from_line(const char *line, size_t len, const char *sender)
{
    char want[256], got[512];
    regex_t re;

    assert_true(len < sizeof(got));
    memcpy(got, line, len);
    got[len] = 0;
    snprintf(want, sizeof(want),
             "^From %s  (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
             "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] "
             "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\n$", sender);
    assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, got, 0, NULL, 0) != 0)
        fail_msg("From_ line got \"%s\", want /%s/", got, want);
    regfree(&re);
}

/* Checks an mbox holding one message: From_ line, then want exactly. */
static void assert_mbox_one(const char *path, const char *sender, const char *want,
                            size_t want_len)
{
    size_t len, first;
    char *got = slurp(path, &len);
    char *nl = memchr(got, '\n', len);

    assert_non_null(nl);
    first = (size_t) (nl - got) + 1;
    assert_from_line(got, first, sender);
    assert_int_equal(len - first, want_len);
    assert_memory_equal(got + first, want, want_len);
    free(got);
}

/* --- Maildir ---------------------------------------------------------------- */

static void test_maildir_byte_exact(void **state)
{
    static const char content[] = "Subject: hi\n\nFrom here\nbody\r\nlast line";
    struct deliver_request req;
    struct strbuf why;
    char dsn[8], names[4][256], path[600];
    enum deliver_status st;
    struct stat sb;
    size_t len;
    char *got;
    regex_t re;

    (void) state;
    strbuf_init(&why, 64, 4096);
    make_request(&req, "sender@example.com", content, strlen(content));
    /* Neither the Maildir nor its parent exists yet. */
    st = mailbox_maildir_deliver("example.org/user/", &req, PREPEND, 0, dsn, &why);
    assert_int_equal(st, DELIVER_SENT);
    assert_string_equal(dsn, "2.0.0");
    assert_string_equal(why.data, "delivered to maildir");

    assert_int_equal(list_dir("example.org/user/tmp", names, 4), 0);
    assert_int_equal(list_dir("example.org/user/cur", names, 4), 0);
    assert_int_equal(list_dir("example.org/user/new", names, 4), 1);
    assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]{6}P[0-9]+Q[0-9]+\\.[^/:]+$",
                             REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, names[0], 0, NULL, 0) != 0)
        fail_msg("maildir file name \"%s\" is not unique-name shaped", names[0]);
    regfree(&re);
    snprintf(path, sizeof(path), "example.org/user/new/%s", names[0]);
    got = slurp(path, &len);
    /* No From_ line, no escaping; the last line gets its LF. */
    assert_string_equal(got, PREPEND "Subject: hi\n\nFrom here\nbody\r\nlast line\n");
    assert_int_equal(len, strlen(PREPEND) + strlen(content) + 1);
    free(got);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(stat("example.org/user/tmp", &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    assert_int_equal(stat("example.org/user", &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    free_request(&req);
    strbuf_release(&why);
}

static void test_maildir_unique_names(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8], names[8][256];
    int i;

    (void) state;
    strbuf_init(&why, 64, 4096);
    assert_int_equal(mkdir("md", 0700), 0);
    make_request(&req, "", "x\n", 2);
    for (i = 0; i < 5; i++)
        assert_int_equal(mailbox_maildir_deliver("md/", &req, "", 0, dsn, &why), DELIVER_SENT);
    assert_int_equal(list_dir("md/new", names, 8), 5);
    for (i = 1; i < 5; i++)
        assert_string_not_equal(names[i], names[0]);
    free_request(&req);
    strbuf_release(&why);
}

static void test_maildir_size_limit(void **state)
{
    char body[200];
    struct deliver_request req;
    struct strbuf why;
    char dsn[8], names[4][256];

    (void) state;
    strbuf_init(&why, 64, 4096);
    memset(body, 'a', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\n';
    make_request(&req, "s@example.com", body, sizeof(body));
    /* The limit counts the prepended lines too: exactly at it is fine. */
    assert_int_equal(mailbox_maildir_deliver("md/", &req, PREPEND,
                                             (off_t) (strlen(PREPEND) + sizeof(body)), dsn,
                                             &why), DELIVER_SENT);
    assert_int_equal(mailbox_maildir_deliver("md/", &req, PREPEND,
                                             (off_t) (strlen(PREPEND) + sizeof(body) - 1),
                                             dsn, &why), DELIVER_BOUNCE);
    assert_string_equal(dsn, "5.2.2");
    assert_non_null(strstr(why.data, "mailbox full"));
    assert_int_equal(list_dir("md/new", names, 4), 1);
    assert_int_equal(list_dir("md/tmp", names, 4), 0);
    free_request(&req);
    strbuf_release(&why);
}

static void test_maildir_symlinked_tmp(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8], names[4][256];

    (void) state;
    strbuf_init(&why, 64, 4096);
    assert_int_equal(mkdir("md", 0700), 0);
    assert_int_equal(mkdir("elsewhere", 0700), 0);
    assert_int_equal(symlink("../elsewhere", "md/tmp"), 0);
    make_request(&req, "s@example.com", "x\n", 2);
    assert_int_equal(mailbox_maildir_deliver("md/", &req, "", 0, dsn, &why), DELIVER_DEFER);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(why.data, "maildir delivery failed: "));
    assert_int_equal(list_dir("elsewhere", names, 4), 0);
    free_request(&req);
    strbuf_release(&why);
}

static void test_maildir_read_error(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8], names[4][256];

    (void) state;
    strbuf_init(&why, 64, 4096);
    make_request(&req, "s@example.com", "x\n", 2);
    req.content_length = 1 << 20;       /* the file is shorter than that */
    assert_int_equal(mailbox_maildir_deliver("md/", &req, "", 0, dsn, &why), DELIVER_DEFER);
    assert_string_equal(dsn, "4.3.0");
    assert_non_null(strstr(why.data, "error reading message"));
    assert_int_equal(list_dir("md/new", names, 4), 0);
    assert_int_equal(list_dir("md/tmp", names, 4), 0);
    free_request(&req);
    strbuf_release(&why);
}

static void test_maildir_unwritable(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];

    (void) state;
    if (geteuid() == 0)
        skip();                 /* root writes anyway */
    strbuf_init(&why, 64, 4096);
    assert_int_equal(mkdir("md", 0700), 0);
    assert_int_equal(mkdir("md/tmp", 0500), 0);
    make_request(&req, "s@example.com", "x\n", 2);
    assert_int_equal(mailbox_maildir_deliver("md/", &req, "", 0, dsn, &why), DELIVER_DEFER);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(why.data, "Permission denied"));
    free_request(&req);
    strbuf_release(&why);
}

/* --- mbox -------------------------------------------------------------------- */

static void test_mbox_from_escaping(void **state)
{
    static const char content[] =
        "From: a@example.com\nSubject: From here\n\n"
        "From me to you\n>From quoted already\nFromage\nFrom\n\nFrom \nFro";
    static const char want[] =
        PREPEND "From: a@example.com\nSubject: From here\n\n"
        ">From me to you\n>From quoted already\nFromage\nFrom\n\n>From \nFro\n\n";
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];
    struct stat sb;

    (void) state;
    strbuf_init(&why, 64, 4096);
    make_request(&req, "sender@example.com", content, strlen(content));
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, PREPEND, "fcntl, dotlock", 0, dsn,
                                          &why), DELIVER_SENT);
    assert_string_equal(dsn, "2.0.0");
    assert_string_equal(why.data, "delivered to mailbox");
    assert_mbox_one("mbox", "sender@example\\.com", want, strlen(want));
    assert_int_equal(stat("mbox", &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(access("mbox.lock", F_OK), -1);    /* the dot-lock is gone */
    free_request(&req);
    strbuf_release(&why);
}

static void test_mbox_null_sender_and_append(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];
    size_t len;
    char *got;

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox", "old message\n\n");
    assert_int_equal(chmod("mbox", 0600), 0);
    make_request(&req, "", "Subject: bounce\n\nbody\n", 22);
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "flock", 0, dsn, &why),
                     DELIVER_SENT);
    got = slurp("mbox", &len);
    assert_memory_equal(got, "old message\n\n", 13);
    assert_from_line(got + 13, (size_t) (strchr(got + 13, '\n') - (got + 13)) + 1,
                     "MAILER-DAEMON");
    assert_string_equal(strchr(got + 13, '\n') + 1, "Subject: bounce\n\nbody\n\n");
    free(got);
    free_request(&req);
    strbuf_release(&why);
}

/* "From " split across the writer's 64 KiB reads is still escaped. */
static void test_mbox_escape_across_reads(void **state)
{
    size_t at, n = 65536 * 2 + 100, len, first;
    char *content = malloc(n), *want = malloc(n + 16), *got, *nl;
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];

    (void) state;
    strbuf_init(&why, 64, 4096);
    for (at = 65533; at <= 65537; at++) {
        memset(content, 'x', n);
        content[at - 1] = '\n';
        memcpy(content + at, "From ", 5);
        content[n - 1] = '\n';
        memcpy(want, content, at);
        want[at] = '>';
        memcpy(want + at + 1, content + at, n - at);
        want[n + 1] = '\n';
        make_request(&req, "s@example.com", content, n);
        unlink("mbox");
        assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "fcntl", 0, dsn, &why),
                         DELIVER_SENT);
        got = slurp("mbox", &len);
        nl = memchr(got, '\n', len);
        first = (size_t) (nl - got) + 1;
        assert_int_equal(len - first, n + 2);
        if (memcmp(got + first, want, n + 2) != 0)
            fail_msg("escaping wrong with \"From \" at offset %zu", at);
        free(got);
        free_request(&req);
    }
    free(content);
    free(want);
    strbuf_release(&why);
}

static void test_mbox_size_limit_truncates(void **state)
{
    static const char old[] = "From x  Thu Jan  1 00:00:00 1970\nold\n\n";
    char body[300];
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];
    size_t len;
    char *got;

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox", old);
    assert_int_equal(chmod("mbox", 0600), 0);
    memset(body, 'b', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\n';
    make_request(&req, "s@example.com", body, sizeof(body));
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, PREPEND, "fcntl, dotlock",
                                          (off_t) (strlen(old) + 200), dsn, &why),
                     DELIVER_BOUNCE);
    assert_string_equal(dsn, "5.2.2");
    assert_non_null(strstr(why.data, "delivery failed to mailbox mbox: mailbox full"));
    got = slurp("mbox", &len);
    assert_int_equal(len, strlen(old));
    assert_string_equal(got, old);
    free(got);
    assert_int_equal(access("mbox.lock", F_OK), -1);
    /* With room for it, the same message goes in. */
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, PREPEND, "fcntl, dotlock", 1000000,
                                          dsn, &why), DELIVER_SENT);
    free_request(&req);
    strbuf_release(&why);
}

/* A write that fails half way (RLIMIT_FSIZE, as a full disk or quota would)
 * leaves the mailbox exactly as it was. */
static void test_mbox_write_error_truncates(void **state)
{
    static const char old[] = "From x  Thu Jan  1 00:00:00 1970\nold\n\n";
    size_t n = 300000, len;
    char *body = malloc(n), *got;
    int status;
    pid_t pid;

    (void) state;
    spew("mbox", old);
    assert_int_equal(chmod("mbox", 0600), 0);
    memset(body, 'c', n);
    body[n - 1] = '\n';
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 100000, .rlim_max = RLIM_INFINITY};
        struct deliver_request req;
        struct strbuf why;
        char dsn[8];
        enum deliver_status st;

        signal(SIGXFSZ, SIG_IGN);
        strbuf_init(&why, 64, 4096);
        make_request(&req, "s@example.com", body, n);   /* memfd before the limit */
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
            _exit(10);
        st = mailbox_mbox_deliver("mbox", &req, "", "fcntl", 0, dsn, &why);
        if (st != DELIVER_BOUNCE)
            _exit(11);
        if (strcmp(dsn, "5.2.2") != 0 || strstr(why.data, "File too large") == NULL)
            _exit(12);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    got = slurp("mbox", &len);
    assert_int_equal(len, strlen(old));
    assert_string_equal(got, old);
    free(got);
    free(body);
}

static void test_mbox_read_error_truncates(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];
    size_t len;
    char *got;

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox", "kept\n");
    assert_int_equal(chmod("mbox", 0600), 0);
    make_request(&req, "s@example.com", "x\n", 2);
    req.content_length = 1 << 20;
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "fcntl", 0, dsn, &why),
                     DELIVER_DEFER);
    assert_string_equal(dsn, "4.3.0");
    got = slurp("mbox", &len);
    assert_string_equal(got, "kept\n");
    free(got);
    free_request(&req);
    strbuf_release(&why);
}

static void test_mbox_refuses_links(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];
    size_t len;
    char *got;

    (void) state;
    strbuf_init(&why, 64, 4096);
    make_request(&req, "s@example.com", "x\n", 2);

    spew("target", "victim\n");
    assert_int_equal(chmod("target", 0600), 0);
    assert_int_equal(symlink("target", "symlinked"), 0);
    assert_int_equal(mailbox_mbox_deliver("symlinked", &req, "", "fcntl, dotlock", 0, dsn,
                                          &why), DELIVER_DEFER);
    assert_string_equal(dsn, "4.2.0");
    assert_string_equal(why.data, "delivery failed to mailbox symlinked: file is a symbolic link");
    assert_int_equal(access("symlinked.lock", F_OK), -1);

    /* A dangling symlink is not followed to create a file either. */
    assert_int_equal(symlink("created-by-symlink", "dangling"), 0);
    assert_int_equal(mailbox_mbox_deliver("dangling", &req, "", "fcntl", 0, dsn, &why),
                     DELIVER_DEFER);
    assert_int_equal(access("created-by-symlink", F_OK), -1);

    assert_int_equal(link("target", "hardlinked"), 0);
    assert_int_equal(mailbox_mbox_deliver("hardlinked", &req, "", "fcntl", 0, dsn, &why),
                     DELIVER_DEFER);
    assert_string_equal(dsn, "4.2.0");
    assert_string_equal(why.data,
                        "delivery failed to mailbox hardlinked: file has more than one link");

    assert_int_equal(mkdir("adir", 0700), 0);
    assert_int_equal(mailbox_mbox_deliver("adir", &req, "", "fcntl, dotlock", 0, dsn, &why),
                     DELIVER_DEFER);
    assert_string_equal(why.data, "delivery failed to mailbox adir: file is a directory");
    assert_int_equal(access("adir.lock", F_OK), -1);

    got = slurp("target", &len);
    assert_string_equal(got, "victim\n");
    free(got);

    if (geteuid() == 0) {
        spew("foreign", "theirs\n");
        assert_int_equal(chown("foreign", 12345, 12345), 0);
        assert_int_equal(mailbox_mbox_deliver("foreign", &req, "", "fcntl", 0, dsn, &why),
                         DELIVER_DEFER);
        assert_string_equal(why.data,
                            "delivery failed to mailbox foreign: file is not owned by recipient");
        got = slurp("foreign", &len);
        assert_string_equal(got, "theirs\n");
        free(got);
    }
    free_request(&req);
    strbuf_release(&why);
}

static void test_mbox_bad_lock_type(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];

    (void) state;
    strbuf_init(&why, 64, 4096);
    make_request(&req, "s@example.com", "x\n", 2);
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "fcntl, lockf", 0, dsn, &why),
                     DELIVER_DEFER);
    assert_string_equal(dsn, "4.3.5");
    assert_int_equal(access("mbox", F_OK), -1);
    free_request(&req);
    strbuf_release(&why);
}

/* A held dot-lock defers after deliver_lock_attempts x deliver_lock_delay. */
static void test_mbox_dotlock_busy(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    struct timeval t0, t1;
    char dsn[8];
    long ms;

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox.lock", "");
    var_deliver_lock_attempts = 1;
    make_request(&req, "s@example.com", "x\n", 2);
    gettimeofday(&t0, NULL);
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "dotlock", 0, dsn, &why),
                     DELIVER_DEFER);
    gettimeofday(&t1, NULL);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_true(ms >= 900 && ms < 5000);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(why.data, "unable to create lock file mbox.lock"));
    assert_int_equal(access("mbox.lock", F_OK), 0);     /* someone else's: kept */
    assert_int_equal(access("mbox", F_OK), -1);
    free_request(&req);
    strbuf_release(&why);
}

/* A dot-lock older than stale_lock_time is removed and delivery goes on. */
static void test_mbox_dotlock_stale(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[8];

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox.lock", "");
    var_stale_lock_time = 1;
    var_deliver_lock_attempts = 5;
    make_request(&req, "s@example.com", "x\n", 2);
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "dotlock", 0, dsn, &why),
                     DELIVER_SENT);
    assert_int_equal(access("mbox.lock", F_OK), -1);
    free_request(&req);
    strbuf_release(&why);
}

/* A kernel lock held by another process is waited for, then delivery goes on. */
static void test_mbox_fcntl_waits(void **state)
{
    struct deliver_request req;
    struct strbuf why;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char dsn[8];
    int fds[2], status;
    char c;
    pid_t pid;

    (void) state;
    strbuf_init(&why, 64, 4096);
    spew("mbox", "");
    assert_int_equal(chmod("mbox", 0600), 0);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("mbox", O_WRONLY);

        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        if (write(fds[1], "L", 1) != 1)
            _exit(1);
        usleep(400000);
        _exit(0);
    }
    assert_int_equal(read(fds[0], &c, 1), 1);
    make_request(&req, "s@example.com", "x\n", 2);
    assert_int_equal(mailbox_mbox_deliver("mbox", &req, "", "fcntl", 0, dsn, &why),
                     DELIVER_SENT);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    free_request(&req);
    strbuf_release(&why);
}

/* Two processes delivering to one mbox at once: two intact messages. */
static void test_mbox_concurrent_writers(void **state)
{
    size_t n = 1 << 20, len, pos, line;
    char *body[2], *got;
    const char *locks[] = {"fcntl, dotlock", "fcntl", "flock", "dotlock"};
    pid_t pid[2];
    int i, k, status, seen[2];

    (void) state;
    for (i = 0; i < 2; i++) {
        body[i] = malloc(n);
        memset(body[i], i ? 'B' : 'A', n);
        for (pos = 99; pos < n; pos += 100)
            body[i][pos] = '\n';
        body[i][n - 1] = '\n';
    }
    for (k = 0; k < 4; k++) {
        unlink("mbox");
        for (i = 0; i < 2; i++) {
            pid[i] = fork();
            assert_true(pid[i] >= 0);
            if (pid[i] == 0) {
                struct deliver_request req;
                struct strbuf why;
                char dsn[8];

                strbuf_init(&why, 64, 4096);
                make_request(&req, i ? "b@example.com" : "a@example.com", body[i], n);
                _exit(mailbox_mbox_deliver("mbox", &req, "", locks[k], 0, dsn, &why)
                      == DELIVER_SENT ? 0 : 1);
            }
        }
        for (i = 0; i < 2; i++) {
            assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        got = slurp("mbox", &len);
        assert_int_equal(len, 2 * (n + 1) + 2 * (strlen("From a@example.com  ") + 25));
        seen[0] = seen[1] = 0;
        for (pos = 0, i = 0; i < 2; i++) {
            char *nl = memchr(got + pos, '\n', len - pos);
            int which;

            assert_non_null(nl);
            line = (size_t) (nl - (got + pos)) + 1;
            which = strncmp(got + pos, "From b@", 7) == 0;
            assert_from_line(got + pos, line, which ? "b@example\\.com" : "a@example\\.com");
            pos += line;
            assert_true(pos + n + 1 <= len);
            if (memcmp(got + pos, body[which], n) != 0 || got[pos + n] != '\n')
                fail_msg("message %d in the mbox is not intact (locks \"%s\")", i, locks[k]);
            pos += n + 1;
            seen[which]++;
        }
        assert_int_equal(pos, len);
        assert_int_equal(seen[0], 1);
        assert_int_equal(seen[1], 1);
        assert_int_equal(access("mbox.lock", F_OK), -1);
        free(got);
    }
    free(body[0]);
    free(body[1]);
}

static void test_path_is_maildir(void **state)
{
    (void) state;
    assert_true(mailbox_path_is_maildir("/var/mail/vhosts/example.org/user/"));
    assert_true(mailbox_path_is_maildir("Maildir/"));
    assert_false(mailbox_path_is_maildir("/var/mail/user"));
    assert_false(mailbox_path_is_maildir("Maildir"));
    assert_false(mailbox_path_is_maildir(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_maildir_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_unique_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_symlinked_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_read_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_from_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_null_sender_and_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_escape_across_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_size_limit_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_write_error_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_read_error_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_refuses_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_bad_lock_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_dotlock_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_dotlock_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_fcntl_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox_concurrent_writers, setup, teardown),
        cmocka_unit_test(test_path_is_maildir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
