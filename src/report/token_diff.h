/* token_diff.h — one token followed through two checkpoints, neuron by
 * neuron: "which neurons gained *dog*?" (`neuromap diff A B --token TEXT`).
 *
 * For every neuron the token's logit, rank (1 = the neuron's top token) and
 * probability (softmax over the full vocabulary) in A and in B. From a model
 * these are exact: the neuron's every logit is computed (the lens's FP32
 * product), the rank counted over the whole vocabulary and the normaliser
 * summed in double (lens_token_in_row, lens/find.h). From an atlas only the stored lists are known: a neuron
 * whose stored top or bottom list lacks the token cannot be compared, and is
 * counted, not guessed at.
 *
 * Neurons are ranked by the signed change B − A of the chosen measure,
 * largest increase first: for rank, an improvement (rank_a − rank_b) counts
 * as the increase.
 */
#ifndef NEUROMAP_TOKEN_DIFF_H
#define NEUROMAP_TOKEN_DIFF_H

#include "report/diff.h"

typedef enum { TOKEN_DIFF_BY_LOGIT, TOKEN_DIFF_BY_PROB, TOKEN_DIFF_BY_RANK } TokenDiffBy;
const char *token_diff_by_name(TokenDiffBy by); /* "logit", "prob", "rank" */

typedef struct {
    int token;
    unsigned mask;           /* matrices: 1 << MatrixKind each */
    long layer0, layer1;     /* inclusive; layer1 < 0: every layer */
    LensNorm norm;
    int norm_given;          /* else the atlases' norm, or full */
    TokenDiffBy by;
    int reverse;             /* largest decrease first */
    int threads;
} TokenDiffOptions;

/* One neuron, both sides. */
typedef struct {
    MatrixKind matrix;
    int layer, neuron;
    float logit_a, logit_b;
    int rank_a, rank_b;
    double prob_a, prob_b;
    double delta;            /* the measure's change, B − A (rank: rank_a − rank_b) */
} TokenDiffRow;

typedef struct {
    TokenDiffOptions opt;    /* as resolved: layers and norm filled in */
    TokenDiffRow *rows;      /* every compared neuron, ranked */
    int64_t n_rows;
    int64_t not_stored;      /* atlas side: the token in neither stored list */
    int64_t nonfinite;       /* a NaN or an infinity on one side or both */
} TokenDiffReport;

/* Compares the token across a and b (opened by diff_source_open, checked
 * compatible here). progress (may be NULL) gets neurons done of total. */
int token_diff_run(DiffSource *a, DiffSource *b, TokenDiffOptions *o, TokenDiffReport *r,
                   void (*progress)(void *ctx, int64_t done, int64_t total), void *ctx, Error *e);
void token_diff_free(TokenDiffReport *r);

#endif
