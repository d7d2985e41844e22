/* act_internal.h — what activations_store.c shares with act_merge.c, and
 * nothing else uses. */
#ifndef NEUROMAP_ACT_INTERNAL_H
#define NEUROMAP_ACT_INTERNAL_H

/* NM_INTERNAL_BEGIN */
#include <sqlite3.h>

#include "store/activations_store.h"

struct ActStore {
    sqlite3 *db;
    char *path, *temp;
    int lock_fd;
    ActInfo info;
};

void act_store_free(ActStore *s);
/* Every neuron's row, lists and exact sums, and the unigrams, into r; with
 * readings, each neuron's stored readings (−1: none). */
int act_load_state(sqlite3 *db, const char *path, ActRun *r, int *const readings[5], Error *e);
int act_save_state(ActStore *s, const ActRun *r, const int *const readings[5], Error *e);
int act_copy_file(const char *from, int to_fd, Error *e);
/* Closes, syncs and renames the partial into place (frees s); on failure
 * keeps the partial (act_store_close_partial). */
int act_store_finish(ActStore *s, Error *e);
/* The act_meta keys of a run's options and their values. */
enum { ACT_RUN_KEYS = 9 };
extern const char *const act_run_key_names[ACT_RUN_KEYS], *const act_run_key_options[ACT_RUN_KEYS];
void act_run_keys(const ActInfo *in, uint64_t identity, char v[ACT_RUN_KEYS][64]);
/* NM_INTERNAL_END */

#endif
