/* deltaimg: a small non-blocking glue over xdelta3's stream API, for WebAssembly.
 *
 * Copyright deltaimg authors. Apache-2.0.
 *
 * JavaScript drives one xd3 stream per job through xg_run(). The stream asks for
 * three things, each handed back to JavaScript as a return code:
 *   XG_NEED_INPUT  (XD3_INPUT)     fill xg_input_ptr() and call xg_provide_input()
 *   XG_HAVE_OUTPUT (XD3_OUTPUT)    copy xg_output_ptr()/len out, call xg_consume_output()
 *   XG_NEED_BLOCK  (XD3_GETSRCBLK) read source bytes at xg_block_offset() into
 *                                  xg_block_ptr() (up to xg_block_len()), call xg_block_done()
 * and, for the decoder only, XG_GOT_HEADER (XD3_GOTHEADER) once the VCDIFF header
 * (and application header) has been parsed.
 *
 * Source blocks live in a cache inside wasm memory that mirrors the xdelta3 command line:
 * a source that fits in the source window is one block; a larger one is split into
 * 32 blocks of window/32 bytes, replaced first-in-first-out when encoding (so the
 * encoder sees XD3_TOOFARBACK exactly where native xdelta3 does, giving identical
 * deltas) and least-recently-used when decoding.
 *
 * 64-bit quantities cross the boundary as doubles (exact up to 2^53 bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xdelta3.h"

#define XG_SLOTS 32

#define XG_NEED_INPUT XD3_INPUT
#define XG_HAVE_OUTPUT XD3_OUTPUT
#define XG_NEED_BLOCK XD3_GETSRCBLK
#define XG_GOT_HEADER XD3_GOTHEADER

#define XG_INVALID_BLKNO UINT64_MAX

typedef struct {
  uint8_t *buf;   /* slot memory (capacity = blksize, or the source size if smaller) */
  uint32_t cap;
  xoff_t blkno;   /* block held, or XG_INVALID_BLKNO */
  uint32_t len;   /* bytes held */
  uint32_t used;  /* LRU clock */
} xg_slot;

typedef struct {
  xd3_stream stream;
  xd3_config config;
  xd3_source source;
  int encoding;
  int has_source;
  int fifo;            /* encoder: first-in-first-out, like xdelta3 -e */
  int nslots;
  uint32_t clock;
  xg_slot slots[XG_SLOTS];
  int pending;         /* slot waiting for JavaScript to fill it, or -1 */
  xoff_t pending_blkno;
  xoff_t source_size;
  uint8_t *input;
  uint32_t input_cap;
  uint8_t *appheader;  /* owned copy: xd3 keeps the pointer until the header is written */
  int last_error;
} xg_job;

/* ---- source block cache ---- */

static xg_slot *xg_find_slot(xg_job *job, xoff_t blkno) {
  for (int i = 0; i < job->nslots; i++) {
    if (job->slots[i].blkno == blkno) return &job->slots[i];
  }
  return NULL;
}

static void xg_point_source_at(xg_job *job, xg_slot *slot, xoff_t blkno) {
  slot->used = ++job->clock;
  job->source.curblkno = blkno;
  job->source.curblk = slot->buf;
  job->source.onblk = slot->len;
}

/* Chooses the slot that a missing block will be read into. Returns -1 when a FIFO
 * cache has already moved past the block (the encoder then gives up that match,
 * exactly as xdelta3 -e does with its source FIFO). */
static int xg_choose_slot(xg_job *job, xoff_t blkno) {
  if (job->fifo) {
    int idx = (int)(blkno % (xoff_t)job->nslots);
    xoff_t held = job->slots[idx].blkno;
    if (held != XG_INVALID_BLKNO && held > blkno) return -1;
    return idx;
  }
  int victim = 0;
  for (int i = 0; i < job->nslots; i++) {
    if (job->slots[i].blkno == XG_INVALID_BLKNO) return i;
    if (job->slots[i].used < job->slots[victim].used) victim = i;
  }
  return victim;
}

/* xd3's getblk callback: serve hits from the cache; on a miss, reserve a slot and
 * suspend the stream with XD3_GETSRCBLK so JavaScript can read the block. */
static int xg_getblk(xd3_stream *stream, xd3_source *source, xoff_t blkno) {
  xg_job *job = (xg_job *)stream->opaque;
  (void)source;
  xg_slot *hit = xg_find_slot(job, blkno);
  if (hit != NULL) {
    xg_point_source_at(job, hit, blkno);
    return 0;
  }
  int idx = xg_choose_slot(job, blkno);
  if (idx < 0) return XD3_TOOFARBACK;
  job->slots[idx].blkno = XG_INVALID_BLKNO;
  job->pending = idx;
  job->pending_blkno = blkno;
  stream->msg = "getblk source input";
  return XD3_GETSRCBLK;
}

/* ---- job lifecycle ---- */

static void xg_set_secondary(xd3_config *config, int secondary) {
  switch (secondary) {
    case 1: /* djw at xdelta3's default secondary level 6 (same as -S djw) */
      config->flags |= XD3_SEC_DJW;
      config->sec_data.ngroups = 1;
      config->sec_inst.ngroups = 1;
      config->sec_addr.ngroups = 1;
      break;
    case 2:
      config->flags |= XD3_SEC_FGK;
      break;
    default:
      break;
  }
}

/* The same level-to-matcher table as xdelta3's command line (-0 .. -9). */
static void xg_set_level(xd3_config *config, int level) {
  if (level <= 0) {
    config->flags |= XD3_NOCOMPRESS;
    config->smatch_cfg = XD3_SMATCH_FASTEST;
  } else if (level == 1) {
    config->smatch_cfg = XD3_SMATCH_FASTEST;
  } else if (level == 2) {
    config->smatch_cfg = XD3_SMATCH_FASTER;
  } else if (level <= 5) {
    config->smatch_cfg = XD3_SMATCH_FAST;
  } else if (level == 6) {
    config->smatch_cfg = XD3_SMATCH_DEFAULT;
  } else {
    config->smatch_cfg = XD3_SMATCH_SLOW;
  }
}

/* encoding: 1 encode, 0 decode. winsize: encoder input window (target bytes per
 * VCDIFF window); for the decoder it is the size of the delta input buffer. */
xg_job *xg_create(int encoding, int level, int secondary, uint32_t winsize) {
  xg_job *job = (xg_job *)calloc(1, sizeof(xg_job));
  if (job == NULL) return NULL;
  job->encoding = encoding;
  job->pending = -1;
  for (int i = 0; i < XG_SLOTS; i++) job->slots[i].blkno = XG_INVALID_BLKNO;

  job->input_cap = winsize;
  job->input = (uint8_t *)malloc(winsize);
  if (job->input == NULL) {
    free(job);
    return NULL;
  }

  xd3_config *config = &job->config;
  config->winsize = winsize;
  config->sprevsz = XD3_DEFAULT_SPREVSZ;
  config->iopt_size = XD3_DEFAULT_IOPT_SIZE;
  config->getblk = xg_getblk;
  config->opaque = job;
  config->flags = XD3_ADLER32; /* per-window checksums: always written, always verified */
  if (encoding) {
    xg_set_level(config, level);
    xg_set_secondary(config, secondary);
  }
  job->last_error = xd3_config_stream(&job->stream, config);
  return job;
}

int xg_config_error(xg_job *job) { return job->last_error; }

/* Room the stream allocates next to the source slots (a target window's buffers and
 * sections: about twice xdelta3's default 8 MiB window), reserved together with them. */
#define XG_RESERVE_EXTRA (16U << 20)

/* Makes the heap hold `bytes` of free space in one step: left to itself, malloc would grow
 * wasm memory slot by slot, and V8 answers each growth of a wasm memory with a garbage
 * collection (about 30 of them for 32 source slots). One malloc of the total grows memory
 * once; freed, it stays in the heap (emscripten's dlmalloc never trims) for the slots to be
 * carved from, and an instance reused by the next job already has the room. Pages not
 * touched cost nothing. Best effort: if it fails, the slot mallocs proceed as before. */
static void xg_reserve_heap(size_t bytes) {
  void *volatile probe = malloc(bytes); /* volatile: clang drops a bare malloc/free pair */
  free(probe);
}

static uint32_t xg_slot_cap(uint32_t blksize, int nslots, xoff_t source_size) {
  uint32_t cap = (nslots == 1 && source_size < blksize) ? (uint32_t)source_size : blksize;
  return cap == 0 ? 1 : cap;
}

static int xg_alloc_slots(xg_job *job, uint32_t blksize, int nslots, xoff_t source_size) {
  job->nslots = nslots;
  uint32_t cap = xg_slot_cap(blksize, nslots, source_size);
  /* dlmalloc's per-chunk overhead is a few bytes: 64 per slot is ample. */
  xg_reserve_heap((size_t)nslots * (cap + 64U) + XG_RESERVE_EXTRA);
  for (int i = 0; i < nslots; i++) {
    /* One slot per malloc: no single allocation reaches 2 GiB. */
    job->slots[i].buf = (uint8_t *)malloc(cap);
    if (job->slots[i].buf == NULL) return -1;
    job->slots[i].cap = cap;
  }
  return 0;
}

static uint32_t xg_pow2_roundup(uint32_t x) {
  uint32_t p = XD3_ALLOCSIZE;
  while (p < x && p < (1U << 31)) p <<= 1;
  return p;
}

/* Attaches a random-access source of known size, with a source window of srcwin
 * bytes (xdelta3 -B; rounded up to a power of two, at least 512 KiB). */
int xg_set_source(xg_job *job, double source_size_d, uint32_t srcwin) {
  xoff_t source_size = (xoff_t)source_size_d;
  uint32_t window = xg_pow2_roundup(srcwin < XD3_ALLOCSIZE * XG_SLOTS ? XD3_ALLOCSIZE * XG_SLOTS : srcwin);
  uint32_t blksize = window;
  int nslots = 1;
  if (source_size > window) {
    blksize = window / XG_SLOTS;
    nslots = XG_SLOTS;
  }
  if (xg_alloc_slots(job, blksize, nslots, source_size) != 0) return ENOMEM;

  job->has_source = 1;
  job->fifo = job->encoding && nslots > 1;
  job->source_size = source_size;
  job->source.blksize = blksize;
  job->source.name = "source";
  job->source.max_winsize = window;
  job->source.curblkno = XG_INVALID_BLKNO;
  job->source.curblk = NULL;
  return xd3_set_source_and_size(&job->stream, &job->source, source_size);
}

int xg_set_appheader(xg_job *job, const uint8_t *data, uint32_t len) {
  free(job->appheader);
  job->appheader = (uint8_t *)malloc(len ? len : 1);
  if (job->appheader == NULL) return ENOMEM;
  memcpy(job->appheader, data, len);
  xd3_set_appheader(&job->stream, job->appheader, len);
  return 0;
}

/* Decoder, after XG_GOT_HEADER: the application header (NULL, 0 if none). */
uint8_t *xg_appheader_ptr(xg_job *job) {
  uint8_t *data = NULL;
  usize_t size = 0;
  if (xd3_get_appheader(&job->stream, &data, &size) != 0) return NULL;
  return data;
}

uint32_t xg_appheader_len(xg_job *job) {
  uint8_t *data = NULL;
  usize_t size = 0;
  if (xd3_get_appheader(&job->stream, &data, &size) != 0) return 0;
  return size;
}

/* ---- the run loop ---- */

uint8_t *xg_input_ptr(xg_job *job) { return job->input; }
uint32_t xg_input_cap(xg_job *job) { return job->input_cap; }

/* Hands len bytes at xg_input_ptr() to the stream; last=1 marks the end of input. */
void xg_provide_input(xg_job *job, uint32_t len, int last) {
  if (last) xd3_set_flags(&job->stream, job->stream.flags | XD3_FLUSH);
  xd3_avail_input(&job->stream, job->input, len);
}

/* Runs the stream until it needs JavaScript. Window notifications are internal. */
int xg_run(xg_job *job) {
  for (;;) {
    int ret = job->encoding ? xd3_encode_input(&job->stream) : xd3_decode_input(&job->stream);
    if (ret == XD3_WINSTART || ret == XD3_WINFINISH) continue;
    if (ret == XD3_GETSRCBLK && job->pending < 0) {
      /* Cannot happen with a source attached (xg_getblk reserved a slot); without
       * one the delta needs a source it was not given. */
      job->stream.msg = "delta needs a source file";
      return XD3_INVALID_INPUT;
    }
    job->last_error = ret;
    return ret;
  }
}

uint8_t *xg_output_ptr(xg_job *job) { return job->stream.next_out; }
uint32_t xg_output_len(xg_job *job) { return job->stream.avail_out; }
void xg_consume_output(xg_job *job) { xd3_consume_output(&job->stream); }

/* The pending block request: where to read from, and into where. */
double xg_block_offset(xg_job *job) { return (double)(job->pending_blkno * job->source.blksize); }
uint8_t *xg_block_ptr(xg_job *job) { return job->pending < 0 ? NULL : job->slots[job->pending].buf; }
uint32_t xg_block_len(xg_job *job) {
  if (job->pending < 0) return 0;
  xoff_t offset = job->pending_blkno * job->source.blksize;
  if (offset >= job->source_size) return 0;
  xoff_t left = job->source_size - offset;
  uint32_t cap = job->slots[job->pending].cap;
  return left < cap ? (uint32_t)left : cap;
}

/* JavaScript read nread bytes into the pending slot. */
void xg_block_done(xg_job *job, uint32_t nread) {
  if (job->pending < 0) return;
  xg_slot *slot = &job->slots[job->pending];
  slot->blkno = job->pending_blkno;
  slot->len = nread;
  xg_point_source_at(job, slot, job->pending_blkno);
  job->pending = -1;
}

/* ---- results and teardown ---- */

const char *xg_message(xg_job *job) { return xd3_errstring(&job->stream); }
const char *xg_strerror(int code) { return xd3_strerror(code); }
double xg_total_in(xg_job *job) { return (double)job->stream.total_in; }
double xg_total_out(xg_job *job) { return (double)job->stream.total_out; }
double xg_current_window(xg_job *job) { return (double)job->stream.current_window; }

/* End of input: 0 if the stream ended cleanly (a decoder not mid-window). */
int xg_close(xg_job *job) { return xd3_close_stream(&job->stream); }

void xg_destroy(xg_job *job) {
  if (job == NULL) return;
  xd3_free_stream(&job->stream);
  for (int i = 0; i < job->nslots; i++) free(job->slots[i].buf);
  free(job->input);
  free(job->appheader);
  free(job);
}

/* Helpers so JavaScript can pass small strings and buffers in. */
void *xg_malloc(uint32_t size) { return malloc(size); }
void xg_free(void *ptr) { free(ptr); }
