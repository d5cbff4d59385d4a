/*
 * qid.h - queue IDs: unique without a central counter, sorted by arrival.
 *
 * FORMAT
 *	A queue ID is 10 characters of time followed by the queue file's inode
 *	number, all in base 52 with the alphabet
 *	    0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz
 *	(ASCII order, no vowels, so an ID never spells a word and is safe as a
 *	file name on any filesystem that keeps case):
 *	    6 digits  seconds since the epoch (enough until the year 2596),
 *	    4 digits  microseconds (0..999999),
 *	    1..12     the inode number, without leading zeros.
 *	Because the time part has a fixed width and the alphabet is in ASCII
 *	order, sorting IDs as strings sorts them by arrival time. The inode
 *	makes an ID unique: no two existing files share an inode, so two
 *	processes naming their files at the same microsecond still differ (see
 *	queue_path_create for the complete argument).
 *
 * DIAGNOSTICS
 *	qid_format fails with ERANGE for a time before the epoch or after 2596.
 *	The parsers return -1 (or 0 for qid_valid) for anything that is not
 *	exactly a queue ID in canonical form; they never read past the NUL.
 */
#ifndef PETREL_QID_H
#define PETREL_QID_H

#include <sys/time.h>
#include <sys/types.h>

#define QID_TIME_LEN 10         /* seconds and microseconds */
#define QID_INODE_MAX_LEN 12    /* 52^12 > 2^64 */
#define QID_MAX_LEN (QID_TIME_LEN + QID_INODE_MAX_LEN)
#define QID_BUFSIZE (QID_MAX_LEN + 1)

/* The 52 digits, in value order. */
extern const char qid_alphabet[];

/* Writes the ID for (tv, ino) into buf; returns its length, or -1 (ERANGE). */
int qid_format(char buf[QID_BUFSIZE], const struct timeval *tv, ino_t ino);
/* 1 if str is a queue ID in canonical form, else 0. */
int qid_valid(const char *str);
/* The arrival time an ID records; 0, or -1 if str is not a valid ID. */
int qid_time(const char *str, struct timeval *tv);
/* The inode number an ID records; 0, or -1 if str is not a valid ID. */
int qid_inode(const char *str, ino_t *ino);

#endif
