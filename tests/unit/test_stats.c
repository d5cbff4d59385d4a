/*
 * test_stats.c - the shared counters: a new file, slots found again by a second
 * attachment (another process), services and transports apart, reject classes
 * (EHLO counts as HELO, unknown stages as other), delivery outcomes and bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "stats.h"

static void test_stats_file(void **state)
{
    char path[] = "/tmp/test_statsXXXXXX";
    struct stats_slot_view v[STATS_SLOTS];
    int fd, n, i;

    (void) state;
    assert_true((fd = mkstemp(path)) >= 0);
    close(fd);
    assert_int_equal(stats_read(path, v, STATS_SLOTS), 0);     /* empty: nothing counted */
    stats_use_file(path);
    stats_set_service("smtp");
    stats_count(STATS_CONNECTIONS, 1);
    stats_count(STATS_CONNECTIONS, 2);
    stats_count_reject("RCPT");
    stats_count_reject("EHLO");
    stats_count_reject("nonsense");
    stats_count_delivery("local", STATS_STATUS_SENT, 100);
    stats_count_delivery("local", STATS_STATUS_BOUNCED, 100);
    stats_count_reuse("smtp");
    stats_close();
    stats_use_file(path);       /* another process: the same slots */
    stats_count(STATS_CONNECTIONS, 4);
    stats_close();
    n = stats_read(path, v, STATS_SLOTS);
    assert_int_equal(n, 3);
    for (i = 0; i < n; i++) {
        if (v[i].kind == STATS_KIND_SERVICE) {
            assert_string_equal(v[i].name, "smtp");
            assert_int_equal(v[i].counter[STATS_CONNECTIONS], 7);
            assert_int_equal(v[i].counter[STATS_REJECT_FIRST + STATS_REJECT_RCPT], 1);
            assert_int_equal(v[i].counter[STATS_REJECT_FIRST + STATS_REJECT_HELO], 1);
            assert_int_equal(v[i].counter[STATS_REJECT_FIRST + STATS_REJECT_OTHER], 1);
        } else if (strcmp(v[i].name, "local") == 0) {
            assert_int_equal(v[i].counter[STATS_DELIVERED], 1);
            assert_int_equal(v[i].counter[STATS_BOUNCED], 1);
            assert_int_equal(v[i].counter[STATS_BYTES_DELIVERED], 100);
        } else {
            assert_string_equal(v[i].name, "smtp");
            assert_int_equal(v[i].counter[STATS_CONNECTION_REUSES], 1);
        }
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
