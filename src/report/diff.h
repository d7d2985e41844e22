/* diff.h — two neuron maps compared neuron by neuron.
 *
 * Each side is a model (decoded on the fly by the lens) or an atlas (the
 * lists `map` stored). For every neuron the two top-K token lists are
 * compared three ways:
 *   top-1 agreement  the highest-logit token is the same token;
 *   Jaccard          |A ∩ B| / |A ∪ B| of the two top-K sets;
 *   Spearman         ρ of the two rankings over A ∪ B, a token missing from
 *                    a list taking the mid-rank of the places after K
 *                    (fractional ranking), so identical lists give 1 and
 *                    disjoint ones a negative ρ.
 * The same comparison serves two questions: a checkpoint against another
 * (base vs fine-tune, F32 vs Q8_0: matrix M of A against matrix M of B) and,
 * within one model, what a neuron reads against what it writes (its up row
 * against its down column).
 */
#ifndef NEUROMAP_DIFF_H
#define NEUROMAP_DIFF_H

#include "store/atlas.h"
#include "lens/lens.h"

/* One side: a model or an atlas, and one layer of its top-K lists at a time. */
typedef struct {
    const char *path;
    Atlas *atlas;            /* NULL for a model */
    Model m;                 /* open when atlas is NULL */
    Lens L;                  /* open once diff_prepare has run, for a model */
    int n_layers, dim, ffn_dim, vocab_size;
    TokenNames names;
    uint64_t identity, content_identity; /* layout and content (model/identity.h); from an
                                            atlas, the model it was mapped from (content 0:
                                            an atlas older than content identities) */
} DiffSource;

/* Opens PATH as an atlas (by its magic) or a model. */
int diff_source_open(DiffSource *s, const char *path, const char *tokenizer, Error *e);
void diff_source_close(DiffSource *s);

/* Refuses (NM_EINPUT) two sources whose shapes or vocabularies differ,
 * naming the first difference. */
int diff_check_compatible(const DiffSource *a, const DiffSource *b, Error *e);

typedef struct {
    MatrixKind a, b;         /* matrix of A compared with matrix of B */
} DiffPair;

typedef struct {
    DiffPair pair[3];
    int n_pairs;
    int read_write;          /* one source: list the strongest agreeing neurons */
    long layer0, layer1;     /* inclusive; layer1 < 0: every layer */
    int top_k;               /* 0: 10, or fewer if an atlas holds fewer */
    LensNorm norm;
    int norm_given;          /* else the atlases' norm, or full */
    int limit;               /* neurons listed */
    int threads;
} DiffOptions;

/* Sums over a set of neurons; means are sum / n. A neuron that is
 * non-finite on either side (NaN or Inf in its vector or logits) is not
 * compared: it is counted in nonfinite only, never in n or same. */
typedef struct {
    int64_t n, same, nonfinite;
    double jaccard, spearman;
} DiffTally;

/* One compared neuron. */
typedef struct {
    DiffPair pair;
    int layer, neuron;
    LensToken a, b;          /* the top-1 token on each side */
    double jaccard, spearman;
} DiffNeuron;

typedef struct {
    DiffOptions opt;         /* as resolved: layers, top_k and norm filled in */
    int n_layers;            /* layer1 - layer0 + 1 */
    DiffTally *per_layer;    /* n_pairs × n_layers, pair-major */
    DiffTally per_pair[3];
    DiffTally total;
    /* Checkpoints: the changed neurons with the largest (1 − Jaccard) × the
     * smaller top-1 probability. Read-vs-write: the agreeing neurons with
     * the largest smaller top-1 probability. At most opt.limit. */
    DiffNeuron *listed;
    int n_listed;
} DiffReport;

/* Resolves the options against the sources (norm, top-K, layers, what each
 * atlas holds), refusing with the reason what cannot be compared, and opens
 * the lens of each model. b may equal a (read_write). */
int diff_prepare(DiffSource *a, DiffSource *b, DiffOptions *o, Error *e);

/* Compares every neuron; each (if not NULL) is called for every neuron in
 * order (pair, layer, neuron). r is filled; free it with diff_report_free. */
int diff_run(DiffSource *a, DiffSource *b, const DiffOptions *o, DiffReport *r,
             void (*each)(void *ctx, const DiffNeuron *d), void *ctx, Error *e);
void diff_report_free(DiffReport *r);

static inline double diff_share(const DiffTally *t) { return t->n ? (double)t->same / (double)t->n : 0.0; }
static inline double diff_mean(double sum, const DiffTally *t) { return t->n ? sum / (double)t->n : 0.0; }

/* The two measures on two top-k lists (token ids in rank order, no id
 * twice), k at most DIFF_MAX_TOP_K. */
#define DIFF_MAX_TOP_K 1000
double diff_jaccard(const LensToken *a, const LensToken *b, int k);
double diff_spearman(const LensToken *a, const LensToken *b, int k);

/* "up", or "up/down" for a read-vs-write pair. */
const char *diff_pair_name(DiffPair p, char *buf, size_t cap);

#endif
