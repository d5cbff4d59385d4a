/*
 * milter_proto.h - the Sendmail milter protocol (versions 2 to 6) on the
 * wire: command and reply codes, negotiation bits, and a codec.
 * A packet is a 4-byte big-endian length (counting the command byte), one
 * command byte, then the payload. The encoder builds packets in a strbuf;
 * the decoder checks one reply packet from a filter and never trusts it:
 * every length is checked against the packet, every string must end in a
 * NUL inside the packet, and packets over MILTER_PKT_MAX are refused before
 * anything is read into memory. No I/O happens here (util/milter.c does it).
 * Failure: the decoder returns -1 with a reason; nothing panics on input.
 */
#ifndef PETREL_MILTER_PROTO_H
#define PETREL_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Commands, MTA to filter. */
#define SMFIC_ABORT     'A'
#define SMFIC_BODY      'B'
#define SMFIC_CONNECT   'C'
#define SMFIC_MACRO     'D'
#define SMFIC_BODYEOB   'E'
#define SMFIC_HELO      'H'
#define SMFIC_QUIT_NC   'K'
#define SMFIC_HEADER    'L'
#define SMFIC_MAIL      'M'
#define SMFIC_EOH       'N'
#define SMFIC_OPTNEG    'O'
#define SMFIC_QUIT      'Q'
#define SMFIC_RCPT      'R'
#define SMFIC_DATA      'T'
#define SMFIC_UNKNOWN   'U'

/* Replies, filter to MTA. */
#define SMFIR_ADDRCPT       '+'
#define SMFIR_DELRCPT       '-'
#define SMFIR_ADDRCPT_PAR   '2'
#define SMFIR_SHUTDOWN      '4'
#define SMFIR_ACCEPT        'a'
#define SMFIR_REPLBODY      'b'
#define SMFIR_CONTINUE      'c'
#define SMFIR_DISCARD       'd'
#define SMFIR_CHGFROM       'e'
#define SMFIR_CONN_FAIL     'f'
#define SMFIR_ADDHEADER     'h'
#define SMFIR_INSHEADER     'i'
#define SMFIR_SETSYMLIST    'l'
#define SMFIR_CHGHEADER     'm'
#define SMFIR_PROGRESS      'p'
#define SMFIR_QUARANTINE    'q'
#define SMFIR_REJECT        'r'
#define SMFIR_SKIP          's'
#define SMFIR_TEMPFAIL      't'
#define SMFIR_REPLYCODE     'y'

/* Connection families in SMFIC_CONNECT. */
#define SMFIA_UNKNOWN   'U'
#define SMFIA_UNIX      'L'
#define SMFIA_INET      '4'
#define SMFIA_INET6     '6'

/* Actions a filter may take (negotiated). */
#define SMFIF_ADDHDRS       0x001
#define SMFIF_CHGBODY       0x002
#define SMFIF_ADDRCPT       0x004
#define SMFIF_DELRCPT       0x008
#define SMFIF_CHGHDRS       0x010
#define SMFIF_QUARANTINE    0x020
#define SMFIF_CHGFROM       0x040
#define SMFIF_ADDRCPT_PAR   0x080
#define SMFIF_SETSYMLIST    0x100

/* Protocol steps and flags (negotiated). */
#define SMFIP_NOCONNECT     0x00000001
#define SMFIP_NOHELO        0x00000002
#define SMFIP_NOMAIL        0x00000004
#define SMFIP_NORCPT        0x00000008
#define SMFIP_NOBODY        0x00000010
#define SMFIP_NOHDRS        0x00000020
#define SMFIP_NOEOH         0x00000040
#define SMFIP_NR_HDR        0x00000080
#define SMFIP_NOUNKNOWN     0x00000100
#define SMFIP_NODATA        0x00000200
#define SMFIP_SKIP          0x00000400
#define SMFIP_RCPT_REJ      0x00000800
#define SMFIP_NR_CONN       0x00001000
#define SMFIP_NR_HELO       0x00002000
#define SMFIP_NR_MAIL       0x00004000
#define SMFIP_NR_RCPT       0x00008000
#define SMFIP_NR_DATA       0x00010000
#define SMFIP_NR_UNKN       0x00020000
#define SMFIP_NR_EOH        0x00040000
#define SMFIP_NR_BODY       0x00080000
#define SMFIP_HDR_LEADSPC   0x00100000
#define SMFIP_MDS_256K      0x10000000
#define SMFIP_MDS_1M        0x20000000

/* What each protocol version may negotiate (as libmilter defines them). */
#define MILTER_V2_PROTO     0x0000007f
#define MILTER_V3_PROTO     0x000000ff
#define MILTER_V4_PROTO     0x000003ff
#define MILTER_V6_PROTO     0x301fffff
#define MILTER_V2_ACTS      0x0000000f
#define MILTER_V4_ACTS      0x0000003f
#define MILTER_V6_ACTS      0x000001ff

/* Macro stages for SMFIR_SETSYMLIST (SMFIM_*). */
enum milter_stage {
    MILTER_STAGE_CONNECT = 0,
    MILTER_STAGE_HELO = 1,
    MILTER_STAGE_MAIL = 2,
    MILTER_STAGE_RCPT = 3,
    MILTER_STAGE_DATA = 4,
    MILTER_STAGE_EOM = 5,
    MILTER_STAGE_EOH = 6,
    MILTER_STAGE_COUNT = 7,
};

#define MILTER_CHUNK_SIZE   65535               /* body chunk before MDS_* */
#define MILTER_PKT_MAX      (1024 * 1024 + 1024)        /* largest reply accepted */
#define MILTER_SYMLIST_MAX  4096                /* one stage's macro list */
#define MILTER_REPLY_TEXT_MAX 4096              /* REPLYCODE text */

/* One decoded reply. Pointers point into the caller's packet buffer. */
struct milter_reply {
    int cmd;                    /* SMFIR_* */
    uint32_t index;             /* INSHEADER, CHGHEADER */
    const char *name;           /* header name; ADDRCPT/DELRCPT/CHGFROM address */
    const char *value;          /* header value (CHGHEADER: empty deletes); ESMTP args */
    const char *text;           /* REPLYCODE (with % undone), QUARANTINE reason */
    const char *data;           /* REPLBODY bytes */
    size_t len;                 /* REPLBODY length */
};

/* A decoded OPTNEG reply. */
struct milter_optneg {
    uint32_t version, actions, protocol;
    const char *symlist[MILTER_STAGE_COUNT];   /* NULL: not set by the filter */
};

/* Encoder: begin, put payload, end (patches the length). */
/* Appends a packet header to pkt; returns where the packet starts. */
size_t milter_pkt_begin(struct strbuf *pkt, int cmd);
void milter_pkt_u32(struct strbuf *pkt, uint32_t v);
void milter_pkt_u16(struct strbuf *pkt, uint16_t v);
void milter_pkt_str(struct strbuf *pkt, const char *s);        /* with its NUL */
void milter_pkt_bytes(struct strbuf *pkt, const void *data, size_t len);
/* Returns 0, or -1 when the packet outgrew the strbuf's limit. */
int milter_pkt_end(struct strbuf *pkt, size_t start);

/* The length in a 4-byte packet header: 0 and -1 on an impossible size. */
int milter_pkt_length(const unsigned char hdr[4], size_t *len);

/*
 * Decodes the payload of one reply packet (cmd and len bytes of data, which
 * the caller keeps NUL-terminated at data[len], so strings are safe). May
 * rewrite bytes in data (REPLYCODE % handling). Returns 0, or -1 with a
 * static reason in *why.
 */
int milter_reply_decode(int cmd, char *data, size_t len, struct milter_reply *r,
                        const char **why);
int milter_optneg_decode(char *data, size_t len, struct milter_optneg *o, const char **why);

/* Checks a REPLYCODE text: "4xx" or "5xx", every line with the same code,
 * lines separated by CRLF. 0 when good. */
int milter_replycode_valid(const char *text);

#endif
