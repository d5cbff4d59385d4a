/*
 * attr.c - build and parse IPC frames of typed, named attributes.
 * The layout is documented in docs/ipc.md; this file is its only encoder and
 * decoder. It never performs I/O and never trusts a received byte: every
 * length is checked against the bytes left in the frame before it is used,
 * the frame length against the limit before anything is allocated, and a
 * frame is accepted only when every attribute in it is valid.
 *
 * Cost: a decoded frame is not copied. Attributes are indexed in one array of
 * entries that point into the frame buffer, names in an open-addressing hash
 * table; both are kept across attr_msg_reset(), so a process that reuses its
 * messages does no allocation per frame once warmed up. Elements of a list
 * are chained, which makes a 5000-recipient list one table slot.
 *
 * Failure: malformed input returns -1 with errno EPROTO (or EMSGSIZE for a
 * limit) and a reason; caller bugs (bad names, wrong state) panic.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "attr.h"
#include "msg.h"
#include "mymalloc.h"
#include "strbuf.h"

#define ATTR_GROW_MIN   (64 * 1024)     /* first payload buffer step */

enum attr_state {
    ATTR_ST_EMPTY,              /* after reset: may build or receive */
    ATTR_ST_BUILD,
    ATTR_ST_HEADER,             /* receiving the fixed header */
    ATTR_ST_PAYLOAD,            /* receiving the payload */
    ATTR_ST_READY,              /* decoded; getters allowed */
    ATTR_ST_FAILED,             /* bad frame; only reset helps */
};

/* One decoded attribute; offsets are into the frame buffer. */
struct attr_ent {
    uint64_t num;               /* U32, I64 value; FD index */
    uint32_t name_off;
    uint32_t val_off;           /* STR, DATA */
    uint32_t val_len;
    uint32_t next;              /* next element of the same list, index + 1 */
    uint32_t last;              /* head only: last element, index + 1 */
    uint8_t name_len;
    uint8_t type;
    uint8_t list;
    uint8_t consumed;
};

struct attr_msg {
    struct strbuf buf;          /* the frame: header, then payload */
    enum attr_state state;
    int error;                  /* errno of a sticky builder failure */
    char reason[160];
    struct attr_limits limits;
    size_t frame_limit;         /* this frame's; limits.max_frame after reset */
    size_t payload_len;         /* declared by the received header */
    size_t header_nfds;         /* declared by the received header */
    size_t nattrs;              /* attributes built */
    struct attr_ent *ents;
    size_t nents, ents_cap;
    uint32_t *slots;            /* entry index + 1 of each name's first element */
    size_t nslots, slots_cap;
    int fds[ATTR_MAX_FDS];
    size_t nfds;
    int fds_owned;              /* received (ours to close) or added (caller's) */
};

static const uint8_t attr_name_chars[256] = {
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1,
    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['_'] = 1,
};

/* Random per process, so a peer cannot choose names that all collide. */
static uint32_t attr_hash_seed;

static const char *const attr_type_names[] = {
    [ATTR_TYPE_U32] = "u32", [ATTR_TYPE_I64] = "i64", [ATTR_TYPE_STR] = "str",
    [ATTR_TYPE_DATA] = "data", [ATTR_TYPE_FD] = "fd",
};

/* ---- small helpers ---- */

static void attr_be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

static uint32_t attr_be32_get(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint32_t attr_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ attr_hash_seed;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ (unsigned char) name[i]) * 16777619u;
    return h;
}

static int attr_name_valid(const char *name, size_t len, size_t max)
{
    size_t i;

    if (len == 0 || len > max)
        return 0;
    for (i = 0; i < len; i++)
        if (!attr_name_chars[(unsigned char) name[i]])
            return 0;
    return 1;
}

/* Records a failure of the frame being received; the message is then dead. */
__attribute__((format(printf, 3, 4)))
static int attr_fail(struct attr_msg *msg, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg->reason, sizeof(msg->reason), fmt, ap);
    va_end(ap);
    if (msg->state == ATTR_ST_HEADER || msg->state == ATTR_ST_PAYLOAD)
        msg->state = ATTR_ST_FAILED;
    errno = err;
    return -1;
}

static void attr_close_fds(struct attr_msg *msg)
{
    size_t i;

    if (msg->fds_owned)
        for (i = 0; i < msg->nfds; i++)
            if (msg->fds[i] >= 0)
                (void) close(msg->fds[i]);
    msg->nfds = 0;
    msg->fds_owned = 0;
}

/* ---- life cycle ---- */

struct attr_msg *attr_msg_new(void)
{
    struct attr_msg *msg = xcalloc(1, sizeof(*msg));

    if (attr_hash_seed == 0 && getrandom(&attr_hash_seed, sizeof(attr_hash_seed),
                                         GRND_NONBLOCK) != sizeof(attr_hash_seed))
        attr_hash_seed = (uint32_t) getpid() * 2654435761u;
    strbuf_init(&msg->buf, 256, STRBUF_UNLIMITED);
    msg->limits.max_frame = ATTR_FRAME_DEFAULT;
    msg->limits.max_attrs = ATTR_COUNT_DEFAULT;
    msg->limits.max_name = ATTR_NAME_MAX;
    attr_msg_reset(msg);
    return msg;
}

void attr_msg_reset(struct attr_msg *msg)
{
    attr_close_fds(msg);
    strbuf_reset(&msg->buf);
    msg->state = ATTR_ST_EMPTY;
    msg->error = 0;
    msg->reason[0] = '\0';
    msg->frame_limit = msg->limits.max_frame;
    msg->payload_len = msg->header_nfds = 0;
    msg->nattrs = msg->nents = 0;
}

void attr_msg_free(struct attr_msg **msgp)
{
    struct attr_msg *msg = *msgp;

    if (msg == NULL)
        return;
    attr_close_fds(msg);
    strbuf_release(&msg->buf);
    free(msg->ents);
    free(msg->slots);
    free(msg);
    *msgp = NULL;
}

void attr_msg_set_limits(struct attr_msg *msg, const struct attr_limits *limits)
{
    struct attr_limits l = *limits;

    if (l.max_frame == 0)
        l.max_frame = ATTR_FRAME_DEFAULT;
    if (l.max_attrs == 0)
        l.max_attrs = ATTR_COUNT_DEFAULT;
    if (l.max_name == 0)
        l.max_name = ATTR_NAME_MAX;
    if (l.max_frame > ATTR_FRAME_MAX || l.max_frame < ATTR_HEADER_SIZE
        || l.max_attrs > ATTR_COUNT_MAX || l.max_name > ATTR_NAME_MAX)
        msg_panic("attr_msg_set_limits: limit out of range (frame %zu, attrs %zu, name %zu)",
                  l.max_frame, l.max_attrs, l.max_name);
    msg->limits = l;
    if (msg->state == ATTR_ST_EMPTY)
        msg->frame_limit = l.max_frame;
}

const char *attr_msg_reason(const struct attr_msg *msg)
{
    return msg->reason[0] ? msg->reason : "no error";
}

size_t attr_msg_count(const struct attr_msg *msg)
{
    return msg->state == ATTR_ST_READY ? msg->nents : msg->nattrs;
}

/* ---- building ---- */

__attribute__((format(printf, 3, 4)))
static int attr_build_fail(struct attr_msg *msg, int err, const char *fmt, ...)
{
    va_list ap;

    if (msg->error == 0) {
        va_start(ap, fmt);
        vsnprintf(msg->reason, sizeof(msg->reason), fmt, ap);
        va_end(ap);
        msg->error = err;
    }
    errno = err;
    return -1;
}

/*
 * Appends type, name and room for a value of vlen bytes; returns where the
 * value goes, or NULL after recording a failure.
 */
static unsigned char *attr_begin(struct attr_msg *msg, int type, const char *name, size_t vlen)
{
    size_t nlen = strlen(name);
    size_t need;
    unsigned char *p;

    if (!attr_name_valid(name, nlen, ATTR_NAME_MAX))
        msg_panic("attr: invalid attribute name \"%.80s\"", name);
    if (msg->state == ATTR_ST_EMPTY) {
        strbuf_reset(&msg->buf);
        if (strbuf_reserve(&msg->buf, ATTR_HEADER_SIZE) < 0)
            msg_panic("attr_begin: cannot reserve header");
        memset(msg->buf.data, 0, ATTR_HEADER_SIZE);
        msg->buf.len = ATTR_HEADER_SIZE;
        msg->state = ATTR_ST_BUILD;
    } else if (msg->state != ATTR_ST_BUILD) {
        msg_panic("attr: %s on a received message; reset it first", name);
    }
    if (msg->nattrs >= msg->limits.max_attrs) {
        attr_build_fail(msg, EMSGSIZE, "more than %zu attributes", msg->limits.max_attrs);
        return NULL;
    }
    need = 2 + nlen;
    if (vlen > msg->limits.max_frame || msg->buf.len + need + vlen > msg->limits.max_frame) {
        attr_build_fail(msg, EMSGSIZE, "attribute %s: frame would exceed %zu bytes",
                        name, msg->limits.max_frame);
        return NULL;
    }
    need += vlen;
    if (strbuf_reserve(&msg->buf, need) < 0)
        msg_panic("attr_begin: reserve %zu failed", need);
    p = (unsigned char *) msg->buf.data + msg->buf.len;
    p[0] = (unsigned char) type;
    p[1] = (unsigned char) nlen;
    memcpy(p + 2, name, nlen);
    msg->buf.len += need;
    msg->buf.data[msg->buf.len] = '\0';
    msg->nattrs++;
    return p + 2 + nlen;
}

static int attr_put_num(struct attr_msg *msg, int type, const char *name, uint64_t v)
{
    size_t width = (type & ~ATTR_FLAG_LIST) == ATTR_TYPE_U32 ? 4 : 8;
    unsigned char *p = attr_begin(msg, type, name, width);

    if (p == NULL)
        return -1;
    if (width == 8) {
        attr_be32_put(p, (uint32_t) (v >> 32));
        p += 4;
    }
    attr_be32_put(p, (uint32_t) v);
    return 0;
}

/* STR carries a NUL after its bytes so the receiver can use it in place. */
static int attr_put_bytes(struct attr_msg *msg, int type, const char *name,
                          const void *data, size_t len)
{
    int is_str = (type & ~ATTR_FLAG_LIST) == ATTR_TYPE_STR;
    unsigned char *p;

    if (len > UINT32_MAX)
        return attr_build_fail(msg, EMSGSIZE, "attribute %s: value too long", name);
    p = attr_begin(msg, type, name, 4 + len + (size_t) is_str);
    if (p == NULL)
        return -1;
    attr_be32_put(p, (uint32_t) len);
    if (len)
        memcpy(p + 4, data, len);
    if (is_str)
        p[4 + len] = '\0';
    return 0;
}

static int attr_put_string(struct attr_msg *msg, int type, const char *name, const char *value)
{
    size_t len = strlen(value);

    /* A string must never break a line-oriented consumer (log, queue file, reply). */
    if (strcspn(value, "\r\n") != len)
        return attr_build_fail(msg, EINVAL, "attribute %s: CR or LF in string", name);
    return attr_put_bytes(msg, type, name, value, len);
}

int attr_put_u32(struct attr_msg *msg, const char *name, uint32_t value)
{
    return attr_put_num(msg, ATTR_TYPE_U32, name, value);
}

int attr_put_i64(struct attr_msg *msg, const char *name, int64_t value)
{
    return attr_put_num(msg, ATTR_TYPE_I64, name, (uint64_t) value);
}

int attr_put_str(struct attr_msg *msg, const char *name, const char *value)
{
    return attr_put_string(msg, ATTR_TYPE_STR, name, value);
}

int attr_put_data(struct attr_msg *msg, const char *name, const void *data, size_t len)
{
    return attr_put_bytes(msg, ATTR_TYPE_DATA, name, data, len);
}

int attr_add_u32(struct attr_msg *msg, const char *name, uint32_t value)
{
    return attr_put_num(msg, ATTR_TYPE_U32 | ATTR_FLAG_LIST, name, value);
}

int attr_add_i64(struct attr_msg *msg, const char *name, int64_t value)
{
    return attr_put_num(msg, ATTR_TYPE_I64 | ATTR_FLAG_LIST, name, (uint64_t) value);
}

int attr_add_str(struct attr_msg *msg, const char *name, const char *value)
{
    return attr_put_string(msg, ATTR_TYPE_STR | ATTR_FLAG_LIST, name, value);
}

int attr_add_data(struct attr_msg *msg, const char *name, const void *data, size_t len)
{
    return attr_put_bytes(msg, ATTR_TYPE_DATA | ATTR_FLAG_LIST, name, data, len);
}

int attr_put_fd(struct attr_msg *msg, const char *name, int fd)
{
    unsigned char *p;

    if (fd < 0)
        msg_panic("attr_put_fd: %s: bad descriptor %d", name, fd);
    if (msg->state == ATTR_ST_BUILD && msg->nfds >= ATTR_MAX_FDS)
        return attr_build_fail(msg, E2BIG, "attribute %s: more than %d descriptors",
                               name, ATTR_MAX_FDS);
    if ((p = attr_begin(msg, ATTR_TYPE_FD, name, 1)) == NULL)
        return -1;
    *p = (unsigned char) msg->nfds;
    msg->fds[msg->nfds++] = fd;
    return 0;
}

int attr_msg_frame(struct attr_msg *msg, const void **data, size_t *len,
                   const int **fds, size_t *nfds)
{
    unsigned char *h;

    if (msg->state == ATTR_ST_EMPTY) {
        if (strbuf_reserve(&msg->buf, ATTR_HEADER_SIZE) < 0)
            msg_panic("attr_msg_frame: cannot reserve header");
        msg->buf.len = ATTR_HEADER_SIZE;
        msg->state = ATTR_ST_BUILD;
    } else if (msg->state != ATTR_ST_BUILD) {
        msg_panic("attr_msg_frame: message is not being built");
    }
    if (msg->error) {
        errno = msg->error;
        return -1;
    }
    h = (unsigned char *) msg->buf.data;
    h[0] = ATTR_MAGIC;
    h[1] = ATTR_VERSION;
    h[2] = (unsigned char) msg->nfds;
    h[3] = 0;
    attr_be32_put(h + 4, (uint32_t) (msg->buf.len - ATTR_HEADER_SIZE));
    *data = msg->buf.data;
    *len = msg->buf.len;
    *fds = msg->fds;
    *nfds = msg->nfds;
    return 0;
}

/* ---- decoding ---- */

void attr_decoder_set_frame_limit(struct attr_msg *msg, size_t max_frame)
{
    if (max_frame < ATTR_HEADER_SIZE || max_frame > ATTR_FRAME_MAX)
        msg_panic("attr_decoder_set_frame_limit: %zu out of range", max_frame);
    msg->frame_limit = max_frame;
}

int attr_decoder_add_fd(struct attr_msg *msg, int fd)
{
    if (msg->state == ATTR_ST_EMPTY) {
        msg->state = ATTR_ST_HEADER;
        strbuf_reset(&msg->buf);
    }
    if ((msg->state != ATTR_ST_HEADER && msg->state != ATTR_ST_PAYLOAD)
        || msg->nfds >= ATTR_MAX_FDS
        || (msg->state == ATTR_ST_PAYLOAD && msg->nfds >= msg->header_nfds)) {
        (void) close(fd);
        if (msg->state == ATTR_ST_FAILED)
            return -1;
        return attr_fail(msg, EPROTO, "more descriptors than the frame declares");
    }
    msg->fds_owned = 1;
    msg->fds[msg->nfds++] = fd;
    return 0;
}

size_t attr_decoder_space(struct attr_msg *msg, void **buf)
{
    size_t want;

    switch (msg->state) {
    case ATTR_ST_EMPTY:
        strbuf_reset(&msg->buf);
        msg->state = ATTR_ST_HEADER;
        /* FALLTHROUGH */
    case ATTR_ST_HEADER:
        want = ATTR_HEADER_SIZE - msg->buf.len;
        break;
    case ATTR_ST_PAYLOAD:
        want = ATTR_HEADER_SIZE + msg->payload_len - msg->buf.len;
        /* Grow only as bytes arrive, so a peer that merely claims a big frame costs little. */
        if (want > msg->buf.cap - 1 - msg->buf.len && want > ATTR_GROW_MIN
            && want > msg->buf.len)
            want = msg->buf.len > ATTR_GROW_MIN ? msg->buf.len : ATTR_GROW_MIN;
        break;
    default:
        msg_panic("attr_decoder_space: message is not receiving (state %d)", msg->state);
    }
    /* The strbuf always has room for its NUL, so reserve covers the header too. */
    if (strbuf_reserve(&msg->buf, want) < 0)
        msg_panic("attr_decoder_space: reserve %zu failed", want);
    *buf = msg->buf.data + msg->buf.len;
    return want;
}

static int attr_parse_header(struct attr_msg *msg)
{
    const unsigned char *h = (const unsigned char *) msg->buf.data;
    size_t plen = attr_be32_get(h + 4);

    if (h[0] != ATTR_MAGIC)
        return attr_fail(msg, EPROTO, "bad frame magic 0x%02x", h[0]);
    if (h[1] != ATTR_VERSION)
        return attr_fail(msg, EPROTO, "unsupported frame version %u", h[1]);
    if (h[2] > ATTR_MAX_FDS)
        return attr_fail(msg, EPROTO, "frame declares %u descriptors (limit %d)",
                         h[2], ATTR_MAX_FDS);
    if (h[3] != 0)
        return attr_fail(msg, EPROTO, "reserved header byte is 0x%02x", h[3]);
    /* Checked before the payload is allocated or read. */
    if (plen > msg->frame_limit - ATTR_HEADER_SIZE)
        return attr_fail(msg, EMSGSIZE, "frame of %zu bytes exceeds the limit of %zu",
                         plen + ATTR_HEADER_SIZE, msg->frame_limit);
    if (msg->nfds > h[2])
        return attr_fail(msg, EPROTO, "received %zu descriptors, frame declares %u",
                         msg->nfds, h[2]);
    msg->header_nfds = h[2];
    msg->payload_len = plen;
    msg->state = ATTR_ST_PAYLOAD;
    return 0;
}

static void attr_index_init(struct attr_msg *msg)
{
    /* The smallest attribute (an fd) is 4 bytes, so this bounds the names. */
    size_t most = msg->payload_len / 4 + 1;
    size_t n = 16;

    if (most > msg->limits.max_attrs)
        most = msg->limits.max_attrs;
    while (n < 2 * most)
        n *= 2;
    if (n > msg->slots_cap) {
        free(msg->slots);
        msg->slots = xreallocarray(NULL, n, sizeof(*msg->slots));
        msg->slots_cap = n;
    }
    memset(msg->slots, 0, n * sizeof(*msg->slots));
    msg->nslots = n;
}

/* Returns the slot holding name, or the empty slot where it would go. */
static uint32_t *attr_slot(const struct attr_msg *msg, const char *name, size_t len)
{
    size_t mask = msg->nslots - 1;
    size_t i = attr_hash(name, len) & mask;
    const struct attr_ent *e;
    uint32_t *s;

    for (;;) {
        s = msg->slots + i;
        if (*s == 0)
            return s;
        e = msg->ents + *s - 1;
        if (e->name_len == len && memcmp(msg->buf.data + e->name_off, name, len) == 0)
            return s;
        i = (i + 1) & mask;
    }
}

/* Links a new entry under its name; repeats are allowed only within a list of one type. */
static int attr_index_add(struct attr_msg *msg, size_t idx)
{
    struct attr_ent *e = msg->ents + idx, *head;
    uint32_t *s = attr_slot(msg, msg->buf.data + e->name_off, e->name_len);

    if (*s == 0) {
        *s = (uint32_t) idx + 1;
        e->last = (uint32_t) idx + 1;
        return 0;
    }
    head = msg->ents + *s - 1;
    if (!head->list || !e->list)
        return attr_fail(msg, EPROTO, "attribute %zu: duplicate name %.*s", idx,
                         (int) e->name_len, msg->buf.data + e->name_off);
    if (head->type != e->type)
        return attr_fail(msg, EPROTO, "attribute %zu: list %.*s mixes types", idx,
                         (int) e->name_len, msg->buf.data + e->name_off);
    msg->ents[head->last - 1].next = (uint32_t) idx + 1;
    head->last = (uint32_t) idx + 1;
    return 0;
}

/*
 * Parses one value at *pos; the type byte and name are already checked.
 * fd_seen tracks descriptor indexes so no descriptor is claimed twice.
 */
static int attr_parse_value(struct attr_msg *msg, struct attr_ent *e, size_t *pos,
                            size_t end, uint32_t *fd_seen)
{
    const unsigned char *p = (const unsigned char *) msg->buf.data + *pos;
    size_t left = end - *pos, idx = msg->nents;
    size_t vlen;

    switch (e->type) {
    case ATTR_TYPE_U32:
        if (left < 4)
            break;
        e->num = attr_be32_get(p);
        *pos += 4;
        return 0;
    case ATTR_TYPE_I64:
        if (left < 8)
            break;
        e->num = (uint64_t) attr_be32_get(p) << 32 | attr_be32_get(p + 4);
        *pos += 8;
        return 0;
    case ATTR_TYPE_FD:
        if (left < 1)
            break;
        if (*p >= msg->header_nfds || (*fd_seen & (1u << *p)))
            return attr_fail(msg, EPROTO, "attribute %zu: bad descriptor index %u", idx, *p);
        *fd_seen |= 1u << *p;
        e->num = *p;
        *pos += 1;
        return 0;
    case ATTR_TYPE_STR:
    case ATTR_TYPE_DATA:
        if (left < 4)
            break;
        vlen = attr_be32_get(p);
        left -= 4;
        if (vlen > left || (e->type == ATTR_TYPE_STR && vlen >= left))
            break;
        e->val_off = (uint32_t) (*pos + 4);
        e->val_len = (uint32_t) vlen;
        *pos += 4 + vlen;
        if (e->type == ATTR_TYPE_STR) {
            /* The terminator is checked first, so strcspn stays inside the value. */
            if (p[4 + vlen] != '\0')
                return attr_fail(msg, EPROTO, "attribute %zu: string not terminated", idx);
            if (strcspn((const char *) p + 4, "\r\n") != vlen)
                return attr_fail(msg, EPROTO, "attribute %zu: NUL, CR or LF in string", idx);
            *pos += 1;
        }
        return 0;
    }
    return attr_fail(msg, EPROTO, "attribute %zu: truncated value", idx);
}

static int attr_parse_one(struct attr_msg *msg, size_t *pos, size_t end, uint32_t *fd_seen)
{
    const unsigned char *p = (const unsigned char *) msg->buf.data + *pos;
    size_t idx = msg->nents, nlen;
    struct attr_ent *e = NULL;
    int type;

    if (idx >= msg->limits.max_attrs)
        return attr_fail(msg, EMSGSIZE, "more than %zu attributes", msg->limits.max_attrs);
    if (end - *pos < 2)
        return attr_fail(msg, EPROTO, "attribute %zu: truncated header", idx);
    type = p[0] & ~ATTR_FLAG_LIST;
    if (type < ATTR_TYPE_U32 || type > ATTR_TYPE_FD
        || (type == ATTR_TYPE_FD && (p[0] & ATTR_FLAG_LIST)))
        return attr_fail(msg, EPROTO, "attribute %zu: bad type 0x%02x", idx, p[0]);
    nlen = p[1];
    if (nlen > end - *pos - 2)
        return attr_fail(msg, EPROTO, "attribute %zu: truncated name", idx);
    if (!attr_name_valid((const char *) p + 2, nlen, msg->limits.max_name))
        return attr_fail(msg, EPROTO, "attribute %zu: bad name (length %zu)", idx, nlen);
    if (idx >= msg->ents_cap) {
        msg->ents_cap = msg->ents_cap ? 2 * msg->ents_cap : 32;
        msg->ents = xreallocarray(msg->ents, msg->ents_cap, sizeof(*msg->ents));
    }
    e = msg->ents + idx;
    memset(e, 0, sizeof(*e));
    e->type = (uint8_t) type;
    e->list = (p[0] & ATTR_FLAG_LIST) != 0;
    e->name_len = (uint8_t) nlen;
    e->name_off = (uint32_t) (*pos + 2);
    *pos += 2 + nlen;
    if (attr_parse_value(msg, e, pos, end, fd_seen) < 0)
        return -1;
    msg->nents++;
    return attr_index_add(msg, idx);
}

static int attr_parse_payload(struct attr_msg *msg)
{
    size_t pos = ATTR_HEADER_SIZE, end = ATTR_HEADER_SIZE + msg->payload_len;
    uint32_t fd_seen = 0;
    size_t nfd_attrs;

    attr_index_init(msg);
    msg->nents = 0;
    while (pos < end)
        if (attr_parse_one(msg, &pos, end, &fd_seen) < 0)
            return -1;
    nfd_attrs = (size_t) __builtin_popcount(fd_seen);
    if (nfd_attrs != msg->header_nfds || msg->nfds != msg->header_nfds)
        return attr_fail(msg, EPROTO, "frame declares %zu descriptors, names %zu, carried %zu",
                         msg->header_nfds, nfd_attrs, msg->nfds);
    msg->state = ATTR_ST_READY;
    return 1;
}

int attr_decoder_commit(struct attr_msg *msg, size_t n)
{
    void *unused;

    if (n > attr_decoder_space(msg, &unused))
        msg_panic("attr_decoder_commit: %zu bytes is more than asked for", n);
    msg->buf.len += n;
    msg->buf.data[msg->buf.len] = '\0';
    if (msg->state == ATTR_ST_HEADER && msg->buf.len == ATTR_HEADER_SIZE
        && attr_parse_header(msg) < 0)
        return -1;
    if (msg->state == ATTR_ST_PAYLOAD && msg->buf.len == ATTR_HEADER_SIZE + msg->payload_len)
        return attr_parse_payload(msg);
    return 0;
}

int attr_decoder_feed(struct attr_msg *msg, const void *data, size_t len, size_t *used)
{
    const char *src = data;
    size_t done = 0, want;
    void *dst;
    int res = 0;

    if (msg->state == ATTR_ST_FAILED) {
        *used = 0;
        errno = EPROTO;
        return -1;
    }
    while (done < len) {
        want = attr_decoder_space(msg, &dst);
        if (want > len - done)
            want = len - done;
        memcpy(dst, src + done, want);
        done += want;
        if ((res = attr_decoder_commit(msg, want)) != 0)
            break;
    }
    *used = done;
    return res;
}

int attr_decoder_eof(struct attr_msg *msg)
{
    if (msg->state == ATTR_ST_FAILED) {
        errno = EPROTO;
        return -1;
    }
    if (msg->state == ATTR_ST_EMPTY
        || (msg->state == ATTR_ST_HEADER && msg->buf.len == 0 && msg->nfds == 0)) {
        snprintf(msg->reason, sizeof(msg->reason), "peer closed the connection");
        errno = EPIPE;
        return -1;
    }
    return attr_fail(msg, ECONNRESET, "peer closed the connection inside a frame");
}

int attr_decode(struct attr_msg *msg, const void *data, size_t len)
{
    size_t used;
    int res;

    attr_msg_reset(msg);
    res = attr_decoder_feed(msg, data, len, &used);
    if (res < 0)
        return -1;
    if (res == 0)
        return attr_fail(msg, EPROTO, "truncated frame (%zu bytes)", len);
    if (used != len) {
        attr_msg_reset(msg);
        msg->state = ATTR_ST_FAILED;
        return attr_fail(msg, EPROTO, "%zu bytes after the frame", len - used);
    }
    return 0;
}

/* ---- getters ---- */

static struct attr_ent *attr_find(struct attr_msg *msg, const char *name)
{
    size_t len = strlen(name);
    uint32_t *s;

    if (msg->state != ATTR_ST_READY)
        msg_panic("attr: lookup of %s in a message that is not decoded", name);
    if (len == 0 || len > ATTR_NAME_MAX)
        return NULL;
    s = attr_slot(msg, name, len);
    return *s ? msg->ents + *s - 1 : NULL;
}

/* Returns 1 and the entry, 0 when absent, -1 when present as something else. */
static int attr_lookup(struct attr_msg *msg, const char *name, int type, struct attr_ent **ep)
{
    struct attr_ent *e = attr_find(msg, name);

    if (e == NULL)
        return 0;
    if (e->list || e->type != type)
        return attr_fail(msg, EPROTO, "attribute %s: %s%s where %s was expected", name,
                         e->list ? "list of " : "", attr_type_names[e->type],
                         attr_type_names[type]);
    e->consumed = 1;
    *ep = e;
    return 1;
}

static int attr_required(struct attr_msg *msg, const char *name, int found)
{
    if (found == 0)
        return attr_fail(msg, ENOENT, "attribute %s: missing", name);
    return found < 0 ? -1 : 0;
}

static void attr_value_bytes(struct attr_msg *msg, const struct attr_ent *e,
                             const void **data, size_t *len)
{
    *data = msg->buf.data + e->val_off;
    if (len)
        *len = e->val_len;
}

int attr_opt_u32(struct attr_msg *msg, const char *name, uint32_t *value)
{
    struct attr_ent *e = NULL;
    int found = attr_lookup(msg, name, ATTR_TYPE_U32, &e);

    if (found > 0)
        *value = (uint32_t) e->num;
    return found;
}

int attr_opt_i64(struct attr_msg *msg, const char *name, int64_t *value)
{
    struct attr_ent *e = NULL;
    int found = attr_lookup(msg, name, ATTR_TYPE_I64, &e);

    if (found > 0)
        *value = (int64_t) e->num;
    return found;
}

int attr_opt_str(struct attr_msg *msg, const char *name, const char **value, size_t *len)
{
    struct attr_ent *e = NULL;
    int found = attr_lookup(msg, name, ATTR_TYPE_STR, &e);

    if (found > 0)
        attr_value_bytes(msg, e, (const void **) value, len);
    return found;
}

int attr_opt_data(struct attr_msg *msg, const char *name, const void **data, size_t *len)
{
    struct attr_ent *e = NULL;
    int found = attr_lookup(msg, name, ATTR_TYPE_DATA, &e);

    if (found > 0)
        attr_value_bytes(msg, e, data, len);
    return found;
}

int attr_opt_fd(struct attr_msg *msg, const char *name, int *fd)
{
    struct attr_ent *e = NULL;
    int found = attr_lookup(msg, name, ATTR_TYPE_FD, &e);

    if (found <= 0)
        return found;
    if (msg->fds[e->num] < 0)
        return attr_fail(msg, EBADF, "attribute %s: descriptor already taken", name);
    *fd = msg->fds[e->num];
    msg->fds[e->num] = -1;
    return 1;
}

int attr_get_u32(struct attr_msg *msg, const char *name, uint32_t *value)
{
    return attr_required(msg, name, attr_opt_u32(msg, name, value));
}

int attr_get_i64(struct attr_msg *msg, const char *name, int64_t *value)
{
    return attr_required(msg, name, attr_opt_i64(msg, name, value));
}

int attr_get_str(struct attr_msg *msg, const char *name, const char **value, size_t *len)
{
    return attr_required(msg, name, attr_opt_str(msg, name, value, len));
}

int attr_get_data(struct attr_msg *msg, const char *name, const void **data, size_t *len)
{
    return attr_required(msg, name, attr_opt_data(msg, name, data, len));
}

int attr_get_fd(struct attr_msg *msg, const char *name, int *fd)
{
    return attr_required(msg, name, attr_opt_fd(msg, name, fd));
}

/* ---- lists ---- */

ssize_t attr_iter_init(struct attr_iter *it, struct attr_msg *msg, const char *name)
{
    struct attr_ent *e = attr_find(msg, name);
    ssize_t count = 0;
    uint32_t i;

    it->msg = msg;
    it->next = 0;
    if (e == NULL)
        return 0;
    if (!e->list)
        return attr_fail(msg, EPROTO, "attribute %s: single %s where a list was expected",
                         name, attr_type_names[e->type]);
    it->next = (uint32_t) (e - msg->ents) + 1;
    for (i = it->next; i != 0; i = msg->ents[i - 1].next)
        count++;
    return count;
}

/* Returns the next element of the expected type, marked consumed. */
static int attr_iter_step(struct attr_iter *it, int type, struct attr_ent **ep)
{
    struct attr_ent *e = NULL;

    if (it->next == 0)
        return 0;
    e = it->msg->ents + it->next - 1;
    if (e->type != type)
        return attr_fail(it->msg, EPROTO, "list of %.*s holds %s where %s was expected",
                         (int) e->name_len, it->msg->buf.data + e->name_off,
                         attr_type_names[e->type], attr_type_names[type]);
    it->next = e->next;
    e->consumed = 1;
    *ep = e;
    return 1;
}

int attr_iter_u32(struct attr_iter *it, uint32_t *value)
{
    struct attr_ent *e = NULL;
    int res = attr_iter_step(it, ATTR_TYPE_U32, &e);

    if (res > 0)
        *value = (uint32_t) e->num;
    return res;
}

int attr_iter_i64(struct attr_iter *it, int64_t *value)
{
    struct attr_ent *e = NULL;
    int res = attr_iter_step(it, ATTR_TYPE_I64, &e);

    if (res > 0)
        *value = (int64_t) e->num;
    return res;
}

int attr_iter_str(struct attr_iter *it, const char **value, size_t *len)
{
    struct attr_ent *e = NULL;
    int res = attr_iter_step(it, ATTR_TYPE_STR, &e);

    if (res > 0)
        attr_value_bytes(it->msg, e, (const void **) value, len);
    return res;
}

int attr_iter_data(struct attr_iter *it, const void **data, size_t *len)
{
    struct attr_ent *e = NULL;
    int res = attr_iter_step(it, ATTR_TYPE_DATA, &e);

    if (res > 0)
        attr_value_bytes(it->msg, e, data, len);
    return res;
}

/* ---- strictness and enumeration ---- */

int attr_check_consumed(struct attr_msg *msg)
{
    size_t i;

    if (msg->state != ATTR_ST_READY)
        msg_panic("attr_check_consumed: message is not decoded");
    for (i = 0; i < msg->nents; i++)
        if (!msg->ents[i].consumed)
            return attr_fail(msg, EPROTO, "unexpected attribute %.*s",
                             (int) msg->ents[i].name_len, msg->buf.data + msg->ents[i].name_off);
    return 0;
}

int attr_walk(const struct attr_msg *msg, size_t *cursor, struct attr_info *info)
{
    const struct attr_ent *e;

    if (msg->state != ATTR_ST_READY || *cursor >= msg->nents)
        return 0;
    e = msg->ents + (*cursor)++;
    info->name = msg->buf.data + e->name_off;
    info->name_len = e->name_len;
    info->type = (enum attr_type) e->type;
    info->list = e->list;
    return 1;
}
