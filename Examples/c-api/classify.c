/*
 * The FlashMem C API from C: open a bundle, run one float32 input through it, print the top class and
 * check the output against a reference.
 *
 *     classify model.fmb input.bin reference.bin [--preload]
 *
 * input.bin and reference.bin are raw little-endian float32 arrays (run-examples.sh writes them from
 * the fixture's .npy files); the input's shape comes from the bundle. Exits 1 when the relative error
 * ||output - reference|| / ||reference|| exceeds 1e-4.
 */
#include "flashmem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                          \
    do {                                                                                     \
        fm_status status_ = (call);                                                          \
        if (status_ != FM_OK) {                                                              \
            fprintf(stderr, "classify: %s: %s\n%s\n", #call, fm_status_string(status_),      \
                    fm_last_error());                                                        \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* Reads a whole file; *bytes is its size. */
static void *read_file(const char *path, size_t *bytes) {
    FILE *file = fopen(path, "rb");
    if (!file) { perror(path); exit(1); }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    void *data = malloc(size > 0 ? (size_t)size : 1);
    if (fread(data, 1, (size_t)size, file) != (size_t)size) { perror(path); exit(1); }
    fclose(file);
    *bytes = (size_t)size;
    return data;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "--preload") != 0)) {
        fprintf(stderr, "usage: classify model.fmb input.bin reference.bin [--preload]\n");
        return 2;
    }
    int preload = argc == 5;

    fm_bundle *bundle;
    CHECK(fm_bundle_open(argv[1], &bundle));
    if (fm_bundle_input_count(bundle) != 1 || fm_bundle_output_count(bundle) != 1 ||
        fm_bundle_input_dtype(bundle, 0) != FM_FLOAT32) {
        fprintf(stderr, "classify: %s is not a classifier with one float32 input and one output\n", argv[1]);
        return 1;
    }
    const char *input_name = fm_bundle_input_name(bundle, 0);
    const int64_t *shape;
    int rank = fm_bundle_input_shape(bundle, 0, &shape);

    fm_device *device;
    CHECK(fm_device_create(-1, &device));
    fm_session *session;
    CHECK(fm_session_create(bundle, device, preload, &session));
    /* The session holds the bundle and device now; shape and input_name stay ours until we close. */

    size_t input_bytes;
    float *input = read_file(argv[2], &input_bytes);
    CHECK(fm_session_set_input(session, input_name, FM_FLOAT32, shape, rank, input, input_bytes));
    CHECK(fm_session_run(session));

    const void *data;
    size_t bytes;
    const int64_t *out_shape;
    int out_rank;
    CHECK(fm_session_output(session, 0, &data, &bytes, &out_shape, &out_rank));
    if (fm_session_output_dtype(session, 0) != FM_FLOAT32) {
        fprintf(stderr, "classify: the output is not float32\n");
        return 1;
    }
    const float *scores = data;
    size_t count = bytes / sizeof(float);

    size_t ref_bytes;
    float *reference = read_file(argv[3], &ref_bytes);
    if (ref_bytes != bytes) {
        fprintf(stderr, "classify: output has %zu bytes, reference %zu\n", bytes, ref_bytes);
        return 1;
    }
    size_t top = 0;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < count; i++) {
        if (scores[i] > scores[top]) top = i;
        diff += ((double)scores[i] - reference[i]) * ((double)scores[i] - reference[i]);
        norm += (double)reference[i] * reference[i];
    }
    double error = sqrt(diff) / sqrt(norm);

    printf("output %s [", fm_bundle_output_name(bundle, 0));
    for (int d = 0; d < out_rank; d++) printf(d ? ",%lld" : "%lld", (long long)out_shape[d]);
    printf("] (%s)\ntop class %zu score %.5f\nrel error vs reference %.2e\n",
           preload ? "preload" : "streaming", top, scores[top], error);

    fm_session_destroy(session);
    fm_device_destroy(device);
    fm_bundle_close(bundle);
    free(input);
    free(reference);
    if (!(error <= 1e-4)) {
        fprintf(stderr, "classify: output does not match the reference\n");
        return 1;
    }
    return 0;
}
