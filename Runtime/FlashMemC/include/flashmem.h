/*
 * flashmem.h: the C API of the FlashMem runtime (libflashmem.so).
 *
 * Runs .fmb bundles compiled by `fmc` on a Vulkan device. The API is a thin layer over the Swift
 * runtime (FlashMemRuntime): a bundle, a device and a session are opaque handles; every fallible call
 * returns an fm_status and, on failure, leaves a message for fm_last_error().
 *
 * Ownership: each handle is created by one fm_*_open/create call and released by the matching
 * close/destroy call. A session keeps its bundle and device alive, so they may be closed/destroyed
 * before the session. Strings and arrays returned by query functions belong to the handle they came
 * from and stay valid until it is released (fm_session_output: until the next fm_session_run).
 *
 * Thread safety: a bundle is read-only once open and may be shared by threads. A device may be shared
 * too: the library serializes the creation, runs and destruction of the sessions on one device (contexts
 * included), so sessions on one device take turns and sessions on different devices run in parallel. A session must be used from one thread at a time (set_input, run
 * and output on one session are not synchronized). fm_last_error() is per thread.
 *
 * Tensors are little-endian, C (row-major) order; FM_BOOL uses one byte per element (0 or 1).
 */
#ifndef FLASHMEM_H
#define FLASHMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a call returned. Each failure also sets fm_last_error() on the calling thread. */
typedef enum fm_status {
    FM_OK = 0,
    /* A NULL pointer, an index out of range, a byte count that does not match dtype and shape. */
    FM_ERROR_INVALID_ARGUMENT,
    /* The .fmb file cannot be read, does not parse or is invalid (message names the file and field). */
    FM_ERROR_BUNDLE,
    /* No suitable Vulkan device, device index out of range, device too small for the bundle, or a
       failed Vulkan call. */
    FM_ERROR_DEVICE,
    /* A device or host allocation failed. */
    FM_ERROR_OUT_OF_MEMORY,
    /* Inputs do not match the model: unknown or missing name, wrong dtype or shape. */
    FM_ERROR_INPUT_MISMATCH,
    /* Any other failure while running. */
    FM_ERROR_RUNTIME
} fm_status;

/* Element types; the values are the bundle format's element-type codes. */
typedef enum fm_dtype {
    FM_DTYPE_INVALID = 0, /* returned by the dtype queries for an index out of range */
    FM_FLOAT32 = 1,
    FM_FLOAT16 = 2,
    FM_INT32 = 3,
    FM_INT64 = 4,
    FM_BOOL = 5
} fm_dtype;

typedef struct fm_bundle fm_bundle;
typedef struct fm_device fm_device;
typedef struct fm_session fm_session;
typedef struct fm_context fm_context;

/* The message of the last failed call on this thread ("" if none). Valid until the next failing call
   on this thread. */
const char *fm_last_error(void);
/* A static name for a status, e.g. "FM_ERROR_BUNDLE". */
const char *fm_status_string(fm_status status);
/* Bytes per element of a dtype (0 for an invalid one). */
size_t fm_dtype_size(fm_dtype dtype);

/* ---- Bundles ---------------------------------------------------------------------------------- */

/* Maps and validates a .fmb file. On success *out is a new bundle for fm_bundle_close. */
fm_status fm_bundle_open(const char *path, fm_bundle **out);
/* Releases the caller's reference (NULL is ignored). Sessions made from it keep it alive. */
void fm_bundle_close(fm_bundle *bundle);

/* The model's signature. Counts are -1 for a NULL bundle; the per-index queries return NULL,
   FM_DTYPE_INVALID or -1 for an index out of range. */
int fm_bundle_input_count(const fm_bundle *bundle);
int fm_bundle_output_count(const fm_bundle *bundle);
const char *fm_bundle_input_name(const fm_bundle *bundle, int index);
const char *fm_bundle_output_name(const fm_bundle *bundle, int index);
fm_dtype fm_bundle_input_dtype(const fm_bundle *bundle, int index);
fm_dtype fm_bundle_output_dtype(const fm_bundle *bundle, int index);
/* Returns the rank and, if shape is not NULL, sets *shape to the dimensions (owned by the bundle). */
int fm_bundle_input_shape(const fm_bundle *bundle, int index, const int64_t **shape);
int fm_bundle_output_shape(const fm_bundle *bundle, int index, const int64_t **shape);

/* ---- Devices ---------------------------------------------------------------------------------- */

/* Opens a Vulkan device: device_index into the list `fmrun --list-devices` prints, or -1 for the
   default choice. On success *out is a new device for fm_device_destroy. */
fm_status fm_device_create(int device_index, fm_device **out);
/* Releases the caller's reference (NULL is ignored). Sessions made on it keep it alive. */
void fm_device_destroy(fm_device *device);

/* ---- Contexts: several models, one memory budget ---------------------------------------------- */

/* A memory budget on device shared by the sessions made with fm_session_create_in_context: their device
   allocations (each session's activation arena and weight space) are counted together and never exceed
   budget_bytes (0: no limit). A session takes its memory when it first runs and keeps it; when another
   session of the context needs the room, the memory of the session used longest ago (not running) is
   taken back, and that session takes it again (copying its weights again) when it next runs. So models
   whose weights together exceed the budget run one after another. On success *out is a new context for
   fm_context_destroy; its sessions keep it alive. */
fm_status fm_context_create(fm_device *device, uint64_t budget_bytes, fm_context **out);
void fm_context_destroy(fm_context *context);
/* The context's own accounting: device bytes its sessions hold now, and the most they held at once.
   Either pointer may be NULL. */
fm_status fm_context_memory(fm_context *context, uint64_t *used_bytes, uint64_t *peak_bytes);

/* ---- Sessions --------------------------------------------------------------------------------- */

/* Flags of fm_session_create, or'd together. */
enum {
    /* Keep every weight resident after the first run (fmrun --preload) instead of streaming weights as
       the bundle's plan says. */
    FM_SESSION_PRELOAD = 1,
    /* Do not check weight chunks against their checksums as they stream (fmrun --trust-bundle). By
       default each chunk is checked once per session, and a mismatch fails the run with FM_ERROR_BUNDLE
       naming the chunk, before its bytes reach the device. */
    FM_SESSION_TRUST_BUNDLE = 2
};

/* Creates a session running bundle on device: allocates its device memory and pipelines. flags: 0 or
   FM_SESSION_* values or'd together (other bits: FM_ERROR_INVALID_ARGUMENT). On success *out is a new
   session for fm_session_destroy. */
fm_status fm_session_create(fm_bundle *bundle, fm_device *device, int flags, fm_session **out);
/* Creates a session whose device memory comes from context (see fm_context_create), taken on its first
   run. A bundle whose own plan (arena + weight space) exceeds the whole budget: FM_ERROR_OUT_OF_MEMORY,
   the message saying how many bytes it needs. flags as for fm_session_create. */
fm_status fm_session_create_in_context(fm_bundle *bundle, fm_context *context, int flags, fm_session **out);
void fm_session_destroy(fm_session *session);

/* Sets the input called name for the next runs: data is copied; bytes must equal the element count
   of shape times fm_dtype_size(dtype). An input set once stays set until set again. */
fm_status fm_session_set_input(fm_session *session, const char *name, fm_dtype dtype,
                               const int64_t *shape, int rank, const void *data, size_t bytes);
/* Runs the model on the inputs set; every input must have been set. */
fm_status fm_session_run(fm_session *session);
/* Output index of the latest run, in the bundle's output order (FM_ERROR_INVALID_ARGUMENT before
   a successful run, and after a failed one). Any of the out pointers may be NULL. The data and shape
   pointers stay valid until the next fm_session_run or fm_session_destroy. */
fm_status fm_session_output(fm_session *session, int index, const void **data, size_t *bytes,
                            const int64_t **shape, int *rank);
/* The dtype of output index of the latest run (FM_DTYPE_INVALID if there is none). */
fm_dtype fm_session_output_dtype(fm_session *session, int index);

#ifdef __cplusplus
}
#endif

#endif /* FLASHMEM_H */
