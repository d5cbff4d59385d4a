/*
 * stats.c - shared 64-bit counters in one mapped file (contract in stats.h).
 *
 * Layout: a 64-byte header ("PSTATS01", slot count, slot size), then
 * STATS_SLOTS slots of 256 bytes: u32 state (0 free, 1 being claimed, 2 in
 * use), u32 kind, a NUL-terminated name of up to 55 bytes, 24 u64 counters.
 * A slot is claimed by CAS of its state 0 -> 1, then kind and name are written
 * and the state released as 2; processes scan slots in order, so two processes
 * wanting the same name meet at the same slot and never make two.
 *
 * Never fails a caller: any problem turns counting off for the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "params.h"
#include "stats.h"

#define STATS_MAGIC         "PSTATS01"
#define STATS_HEADER_SIZE   64
#define STATS_SLOT_SIZE     256
#define STATS_FILE_SIZE     (STATS_HEADER_SIZE + STATS_SLOTS * STATS_SLOT_SIZE)
#define STATS_CLAIM_SPINS   100000
#define STATS_CACHE         16

#define STATE_FREE      0u
#define STATE_CLAIMING  1u
#define STATE_READY     2u

struct stats_header {
    char magic[8];
    uint32_t slots;
    uint32_t slot_size;
    char pad[STATS_HEADER_SIZE - 16];
};

struct stats_slot {
    uint32_t state;
    uint32_t kind;
    char name[STATS_NAME_MAX + 1];
    uint64_t counter[STATS_COUNTERS];
};

_Static_assert(sizeof(struct stats_header) == STATS_HEADER_SIZE, "stats header size");
_Static_assert(sizeof(struct stats_slot) == STATS_SLOT_SIZE, "stats slot size");

static char *stats_map;         /* NULL: not tried; MAP_FAILED: off */
static char stats_path[PATH_MAX];
static char stats_service[STATS_NAME_MAX + 1];
static struct {
    int kind;
    char name[STATS_NAME_MAX + 1];
    struct stats_slot *slot;
} stats_cache[STATS_CACHE];
static int stats_ncache;

void stats_use_file(const char *path)
{
    stats_close();
    snprintf(stats_path, sizeof(stats_path), "%s", path);
}

void stats_close(void)
{
    if (stats_map && stats_map != MAP_FAILED)
        munmap(stats_map, STATS_FILE_SIZE);
    stats_map = NULL;
    stats_ncache = 0;
}

void stats_set_service(const char *service)
{
    snprintf(stats_service, sizeof(stats_service), "%s", service);
}

static void stats_off(const char *why)
{
    msg_warn("statistics are not counted by this process: %s %s: %m", why, stats_path);
    stats_map = MAP_FAILED;
}

static int stats_attach(void)
{
    struct stats_header *h;
    struct stat st;
    int fd;

    if (stats_map)
        return stats_map != MAP_FAILED;
    if (stats_path[0] == '\0') {
        if (var_data_directory == NULL || *var_data_directory == '\0') {
            stats_map = MAP_FAILED;
            return 0;
        }
        snprintf(stats_path, sizeof(stats_path), "%s/%s", var_data_directory, STATS_FILE);
    }
    if ((fd = open(stats_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        stats_off("open");
        return 0;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
        || (st.st_size != 0 && st.st_size != STATS_FILE_SIZE)) {
        errno = EINVAL;
        close(fd);
        stats_off("unexpected file");
        return 0;
    }
    /* Growing a new file from 0 is the same for every process that races here. */
    if (st.st_size == 0 && ftruncate(fd, STATS_FILE_SIZE) < 0) {
        close(fd);
        stats_off("extend");
        return 0;
    }
    stats_map = mmap(NULL, STATS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (stats_map == MAP_FAILED) {
        stats_off("map");
        return 0;
    }
    h = (struct stats_header *) stats_map;
    if (__atomic_load_n(&h->slots, __ATOMIC_ACQUIRE) == 0) {
        /* A new file: every field written is the same in every process. */
        __atomic_store_n(&h->slot_size, STATS_SLOT_SIZE, __ATOMIC_RELAXED);
        memcpy(h->magic, STATS_MAGIC, 8);
        __atomic_store_n(&h->slots, STATS_SLOTS, __ATOMIC_RELEASE);
    } else if (memcmp(h->magic, STATS_MAGIC, 8) != 0 || h->slots != STATS_SLOTS
               || h->slot_size != STATS_SLOT_SIZE) {
        errno = EINVAL;
        munmap(stats_map, STATS_FILE_SIZE);
        stats_off("another format in");
        return 0;
    }
    return 1;
}

static struct stats_slot *stats_slot_at(int i)
{
    return (struct stats_slot *) (stats_map + STATS_HEADER_SIZE + (size_t) i * STATS_SLOT_SIZE);
}

/* Waits for a slot being claimed by another process; its final state. */
static uint32_t stats_wait_ready(struct stats_slot *s)
{
    uint32_t state;
    long spins;

    for (spins = 0; (state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == STATE_CLAIMING
         && spins < STATS_CLAIM_SPINS; spins++)
        sched_yield();
    return state;               /* still CLAIMING: its claimer died; skip it */
}

static struct stats_slot *stats_find(int kind, const char *name)
{
    char key[STATS_NAME_MAX + 1];
    struct stats_slot *s;
    uint32_t state, expect;
    int i;

    if (!stats_attach())
        return NULL;
    snprintf(key, sizeof(key), "%s", name);
    for (i = 0; i < stats_ncache; i++)
        if (stats_cache[i].kind == kind && strcmp(stats_cache[i].name, key) == 0)
            return stats_cache[i].slot;
    for (i = 0; i < STATS_SLOTS; i++) {
        s = stats_slot_at(i);
        state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (state == STATE_FREE) {
            expect = STATE_FREE;
            if (__atomic_compare_exchange_n(&s->state, &expect, STATE_CLAIMING, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                s->kind = (uint32_t) kind;
                memcpy(s->name, key, sizeof(key));
                __atomic_store_n(&s->state, STATE_READY, __ATOMIC_RELEASE);
                break;
            }
            state = expect;
        }
        if (state == STATE_CLAIMING)
            state = stats_wait_ready(s);
        if (state == STATE_READY && s->kind == (uint32_t) kind
            && strncmp(s->name, key, sizeof(key)) == 0)
            break;
    }
    if (i == STATS_SLOTS) {
        static int warned;

        if (!warned++)
            msg_warn("statistics file %s is full: %s is not counted", stats_path, key);
        return NULL;
    }
    if (stats_ncache < STATS_CACHE) {
        stats_cache[stats_ncache].kind = kind;
        memcpy(stats_cache[stats_ncache].name, key, sizeof(key));
        stats_cache[stats_ncache].slot = s;
        stats_ncache++;
    }
    return s;
}

static void stats_add(struct stats_slot *s, int counter, uint64_t n)
{
    if (s != NULL && counter >= 0 && counter < STATS_COUNTERS)
        __atomic_fetch_add(&s->counter[counter], n, __ATOMIC_RELAXED);
}

void stats_count(enum stats_service_counter counter, uint64_t n)
{
    stats_add(stats_find(STATS_KIND_SERVICE, stats_service[0] ? stats_service : msg_program()),
              (int) counter, n);
}

static const char *const stats_reject_stage[STATS_REJECT_CLASSES] = {
    [STATS_REJECT_CONNECT] = "CONNECT", [STATS_REJECT_HELO] = "HELO",
    [STATS_REJECT_MAIL] = "MAIL", [STATS_REJECT_RCPT] = "RCPT", [STATS_REJECT_DATA] = "DATA",
    [STATS_REJECT_END_OF_DATA] = "END-OF-MESSAGE", [STATS_REJECT_ETRN] = "ETRN",
    [STATS_REJECT_VRFY] = "VRFY", [STATS_REJECT_OTHER] = "",
};

static const char *const stats_reject_names[STATS_REJECT_CLASSES] = {
    "connect", "helo", "mail", "rcpt", "data", "end_of_data", "etrn", "vrfy", "other",
};

void stats_count_reject(const char *stage)
{
    int cls;

    for (cls = 0; cls < STATS_REJECT_OTHER; cls++)
        if (stage && strcmp(stage, stats_reject_stage[cls]) == 0)
            break;
    if (stage && strcmp(stage, "EHLO") == 0)
        cls = STATS_REJECT_HELO;
    stats_count((enum stats_service_counter) (STATS_REJECT_FIRST + cls), 1);
}

void stats_count_delivery(const char *transport, int status, uint64_t bytes)
{
    struct stats_slot *s = stats_find(STATS_KIND_TRANSPORT, transport && *transport ? transport
                                      : "unknown");

    switch (status) {
    case STATS_STATUS_SENT:
        stats_add(s, STATS_DELIVERED, 1);
        stats_add(s, STATS_BYTES_DELIVERED, bytes);
        break;
    case STATS_STATUS_DEFERRED:
        stats_add(s, STATS_DEFERRED, 1);
        break;
    case STATS_STATUS_BOUNCED:
        stats_add(s, STATS_BOUNCED, 1);
        break;
    }
}

void stats_count_reuse(const char *transport)
{
    stats_add(stats_find(STATS_KIND_TRANSPORT, transport && *transport ? transport : "unknown"),
              STATS_CONNECTION_REUSES, 1);
}

int stats_read(const char *path, struct stats_slot_view *out, int max)
{
    struct stats_header h;
    struct stats_slot slot;
    int fd, i, n = 0, err;
    ssize_t got;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -1;
    if ((got = pread(fd, &h, sizeof(h), 0)) != (ssize_t) sizeof(h)) {
        err = got < 0 ? errno : 0;
        close(fd);
        if (got == 0)
            return 0;           /* being created */
        errno = err ? err : EINVAL;
        return -1;
    }
    if (h.slots == 0) {
        close(fd);
        return 0;
    }
    if (memcmp(h.magic, STATS_MAGIC, 8) != 0 || h.slots != STATS_SLOTS
        || h.slot_size != STATS_SLOT_SIZE) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i < STATS_SLOTS && n < max; i++) {
        got = pread(fd, &slot, sizeof(slot), STATS_HEADER_SIZE + (off_t) i * STATS_SLOT_SIZE);
        if (got != (ssize_t) sizeof(slot))
            break;
        if (slot.state != STATE_READY
            || (slot.kind != STATS_KIND_SERVICE && slot.kind != STATS_KIND_TRANSPORT))
            continue;
        out[n].kind = (enum stats_kind) slot.kind;
        memcpy(out[n].name, slot.name, sizeof(out[n].name));
        out[n].name[STATS_NAME_MAX] = '\0';
        memcpy(out[n].counter, slot.counter, sizeof(out[n].counter));
        n++;
    }
    close(fd);
    return n;
}

const char *stats_service_counter_name(int counter)
{
    static const char *const names[STATS_REJECT_FIRST] = {
        "connections", "messages_received", "recipients_accepted", "bytes_received",
        "messages_held", "messages_discarded", "messages_rejected",
    };

    if (counter >= 0 && counter < STATS_REJECT_FIRST)
        return names[counter];
    return "rejected";
}

const char *stats_reject_class_name(int cls)
{
    return cls >= 0 && cls < STATS_REJECT_CLASSES ? stats_reject_names[cls] : "other";
}

const char *stats_transport_counter_name(int counter)
{
    static const char *const names[STATS_TRANSPORT_COUNTERS] = {
        "delivered", "deferred", "bounced", "bytes_delivered", "connection_reuses",
    };

    return counter >= 0 && counter < STATS_TRANSPORT_COUNTERS ? names[counter] : "unknown";
}
