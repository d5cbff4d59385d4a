/*
 * setgid_sanitizer.h - included once by each set-gid program (petrel-drop,
 * petrel-showq), and by nothing else.
 *
 * Sanitizer builds only: LeakSanitizer stops the process with ptrace at exit,
 * which a set-gid (non-dumpable) process refuses, so the check would fail every
 * run; making the process dumpable instead would let its user ptrace our group.
 * The sanitizer runtime calls this hook; ordinary builds never do. The leak
 * check still covers the same code in every other program and test.
 */
#ifndef PETREL_SETGID_SANITIZER_H
#define PETREL_SETGID_SANITIZER_H

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}

#endif
