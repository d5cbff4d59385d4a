/*
 * htable.c - string-keyed hash table, linear probing, backward-shift deletion.
 * The slot array is a power of two and at most 3/4 full, so every probe loop
 * ends at an empty slot. The hash is FNV-1a over a per-table random seed: not a
 * cryptographic MAC, but enough that a fixed set of colliding keys does not work
 * against every process. Never fails except by a full table (-1 from insert);
 * allocation failure exits through mymalloc.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "htable.h"
#include "msg.h"
#include "mymalloc.h"

struct htable_slot {
    char *key;                  /* NULL: empty */
    void *value;
    uint64_t hash;
};

struct htable {
    struct htable_slot *slots;
    size_t size;                /* a power of two */
    size_t count;
    uint64_t seed;
};

static uint64_t htable_seed(void)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t) sizeof(seed))
        seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uintptr_t) &seed;
    return seed;
}

static uint64_t htable_hash(const struct htable *ht, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ ht->seed;
    const unsigned char *p;

    for (p = (const unsigned char *) key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    /* Final mix so the low bits (the slot index) depend on every input byte. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

struct htable *htable_new(size_t hint)
{
    struct htable *ht = xmalloc(sizeof(*ht));
    size_t size = 16;

    if (hint > HTABLE_MAX_ENTRIES)
        hint = HTABLE_MAX_ENTRIES;
    while (size / 4 * 3 < hint)
        size *= 2;
    ht->slots = xcalloc(size, sizeof(*ht->slots));
    ht->size = size;
    ht->count = 0;
    ht->seed = htable_seed();
    return ht;
}

void htable_free(struct htable **htp, void (*free_value)(void *value))
{
    struct htable *ht = *htp;
    size_t i;

    if (ht == NULL)
        return;
    for (i = 0; i < ht->size; i++) {
        if (ht->slots[i].key) {
            free(ht->slots[i].key);
            if (free_value)
                free_value(ht->slots[i].value);
        }
    }
    free(ht->slots);
    free(ht);
    *htp = NULL;
}

/* Returns the slot holding key, or the empty slot where it would go. */
static size_t htable_probe(const struct htable *ht, const char *key, uint64_t hash)
{
    size_t mask = ht->size - 1;
    size_t i = (size_t) hash & mask;

    while (ht->slots[i].key != NULL) {
        if (ht->slots[i].hash == hash && strcmp(ht->slots[i].key, key) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

static void htable_grow(struct htable *ht)
{
    struct htable_slot *old = ht->slots;
    size_t old_size = ht->size, i, j, mask;

    ht->size *= 2;
    ht->slots = xcalloc(ht->size, sizeof(*ht->slots));
    mask = ht->size - 1;
    for (i = 0; i < old_size; i++) {
        if (old[i].key == NULL)
            continue;
        for (j = (size_t) old[i].hash & mask; ht->slots[j].key; j = (j + 1) & mask)
             /* void */ ;
        ht->slots[j] = old[i];
    }
    free(old);
}

int htable_insert(struct htable *ht, const char *key, void *value, void **old)
{
    uint64_t hash = htable_hash(ht, key);
    size_t i = htable_probe(ht, key, hash);

    if (ht->slots[i].key != NULL) {
        if (old)
            *old = ht->slots[i].value;
        return 1;
    }
    if (ht->count >= HTABLE_MAX_ENTRIES)
        return -1;
    if (ht->count + 1 > ht->size / 4 * 3) {
        htable_grow(ht);
        i = htable_probe(ht, key, hash);
    }
    ht->slots[i].key = xstrdup(key);
    ht->slots[i].value = value;
    ht->slots[i].hash = hash;
    ht->count++;
    return 0;
}

int htable_lookup(const struct htable *ht, const char *key, void **value)
{
    size_t i = htable_probe(ht, key, htable_hash(ht, key));

    if (ht->slots[i].key == NULL)
        return 0;
    if (value)
        *value = ht->slots[i].value;
    return 1;
}

void *htable_find(const struct htable *ht, const char *key)
{
    void *value = NULL;

    (void) htable_lookup(ht, key, &value);
    return value;
}

int htable_remove(struct htable *ht, const char *key, void **value)
{
    size_t mask = ht->size - 1;
    size_t i = htable_probe(ht, key, htable_hash(ht, key));
    size_t j, home;

    if (ht->slots[i].key == NULL)
        return 0;
    if (value)
        *value = ht->slots[i].value;
    free(ht->slots[i].key);
    ht->slots[i].key = NULL;
    ht->count--;

    /*
     * Backward shift: move each following entry of the cluster into the hole
     * when its home slot does not lie (cyclically) between the hole and it,
     * so later probes never stop early at the hole. No tombstones needed.
     */
    for (j = (i + 1) & mask; ht->slots[j].key != NULL; j = (j + 1) & mask) {
        home = (size_t) ht->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ht->slots[i] = ht->slots[j];
            ht->slots[j].key = NULL;
            i = j;
        }
    }
    return 1;
}

size_t htable_count(const struct htable *ht)
{
    return ht->count;
}

int htable_walk(const struct htable *ht, int (*fn)(const char *key, void *value, void *ctx),
                void *ctx)
{
    size_t i;
    int ret;

    for (i = 0; i < ht->size; i++) {
        if (ht->slots[i].key && (ret = fn(ht->slots[i].key, ht->slots[i].value, ctx)) != 0)
            return ret;
    }
    return 0;
}
