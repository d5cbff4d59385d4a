/*
 * sendmail.h - the parts of the sendmail command that live in their own files.
 */
#ifndef PETREL_SENDMAIL_H
#define PETREL_SENDMAIL_H

/* "mailq" / "sendmail -bp": prints the queue listing; returns a sysexits code. */
int sendmail_mailq(void);

#endif
