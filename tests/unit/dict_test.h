/*
 * dict_test.h - helpers shared by the test_dict_*.c programs: a private
 * scratch directory and file writing. Included only by tests.
 */
#ifndef PETREL_DICT_TEST_H
#define PETREL_DICT_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dict_test_dir[4096];

/* Removes the scratch directory; tests only make plain files in it. */
static inline void dict_test_cleanup(void)
{
    struct dirent *de;
    DIR *dir;

    if (dict_test_dir[0] == 0 || chdir(dict_test_dir) < 0 || (dir = opendir(".")) == NULL)
        return;
    while ((de = readdir(dir)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            (void) unlink(de->d_name);
    closedir(dir);
    if (chdir("/") == 0)
        (void) rmdir(dict_test_dir);
}

/* Makes and enters a fresh directory, removed at exit, so tests never see
 * each other's files. */
static inline void dict_test_chdir_scratch(void)
{
    char dir[] = "petrel-dict-test-XXXXXX";

    if (mkdtemp(dir) == NULL || chdir(dir) < 0 || getcwd(dict_test_dir,
                                                          sizeof(dict_test_dir)) == NULL) {
        perror("scratch directory");
        exit(1);
    }
    atexit(dict_test_cleanup);
}

static inline void dict_test_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) == EOF) {
        perror(path);
        exit(1);
    }
}

#endif
