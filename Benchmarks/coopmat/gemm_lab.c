/* gemm-lab: times one GEMM kernel source on its own, so variants of gemm_cm.comp's structure (where B comes from,
 * A's precision, loads switched off, another work split) can be compared in one device call without building
 * them into fmc. The kernel takes gemm_cm.comp's interface: bindings 0 = A, 1 = B (a 2D-array rgba16f image, or
 * with --b-buffer the same texels as a storage buffer of uvec2; --b-format rg32ui or rgba32ui holds the same bytes
 * in an image of that format, rgba32ui's texels being 8 halves each and the image half as wide), 2 = Y (fp32), 3 = C; the 60-byte push block
 * M, N, K, NB, strideM, strideK, kPerSlice, slices, log2W, log2H, beta, cStrideM, cStrideN, n0, ldY. Texel
 * k · NB + nb of B holds B[k, 4nb .. 4nb + 3] and the bias follows at K · NB (zero, or random with --bias: for
 * kernels that add it, as gemm_cm.comp does).
 *
 *   gemm-lab --shader FILE [--include DIR] [-D NAME=VALUE]... --M m --N n --K k --bm BM --bn BN
 *            [--b-buffer | --b-format rgba16f|rg32ui|rgba32ui] [--a-half] [--repeats R] [--label TEXT] [--bias]
 *            [--compile-only]   (only builds the shader: checks a variant where no device has the units)
 *
 * A is fp32 (fp16 with --a-half, packed 4 per uvec2); inputs are random values rounded to fp16, so the reference
 * (float64 dot products of 256 sampled outputs) is exact up to the kernel's fp32 accumulation. Prints one line:
 * label, median and best GPU time of R dispatches (timestamps), TFLOP/s of the median, relative error.
 * shaderc is linked statically (build-lab.sh), so the binary needs only libvulkan.so.1 there.
 */
#include "lab_vulkan.h"
#include <shaderc/shaderc.h>
#include <math.h>
#include <stdint.h>

#define CHECK(x) LAB_CHECK("gemm-lab", x)

static char *slurp(const char *path, size_t *length) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
    text[n] = 0;
    fclose(f);
    if (length) *length = (size_t)n;
    return text;
}

static const char *include_dir = ".";

static shaderc_include_result *resolve(void *user, const char *requested, int type, const char *from, size_t depth) {
    (void)user; (void)type; (void)from; (void)depth;
    shaderc_include_result *r = calloc(1, sizeof *r);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", include_dir, requested);
    size_t n;
    r->content = slurp(path, &n);
    r->content_length = n;
    r->source_name = strdup(requested);
    r->source_name_length = strlen(requested);
    return r;
}

static void release(void *user, shaderc_include_result *r) { (void)user; (void)r; }

/* fp32 → fp16 (round to nearest even; the inputs here are in [-1, 1], no overflow) and back. */
static uint16_t to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exponent = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mantissa = x & 0x7fffffu;
    if (exponent <= 0) return (uint16_t)sign;  /* tiny values flush to zero (never produced below) */
    uint32_t h = sign | ((uint32_t)exponent << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)h;
}

static float from_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t x = exponent == 0 ? sign : sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static uint64_t rng = 88172645463325252ull;
static float next_value(void) {  /* xorshift; values k / 512 in [-1, 1), exact in fp16 */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((int)(rng % 1024) - 512) / 512.0f;
}

typedef struct { VkBuffer buffer; VkDeviceMemory memory; VkDeviceSize size; void *host; } Buffer;

static VkPhysicalDevice physical;
static VkDevice device;

static uint32_t memory_type(uint32_t bits, VkMemoryPropertyFlags flags) {
    return lab_memory_type("gemm-lab", physical, bits, flags);
}

static Buffer make_buffer(VkDeviceSize size, VkBufferUsageFlags usage, int host) {
    Buffer b = {0};
    b.size = size;
    VkBufferCreateInfo bci = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size;
    bci.usage = usage;
    CHECK(vkCreateBuffer(device, &bci, NULL, &b.buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device, b.buffer, &req);
    VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = memory_type(req.memoryTypeBits, host
        ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    CHECK(vkAllocateMemory(device, &mai, NULL, &b.memory));
    CHECK(vkBindBufferMemory(device, b.buffer, b.memory, 0));
    if (host) CHECK(vkMapMemory(device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.host));
    return b;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *shader = NULL, *label = NULL;
    const char *defines[64];
    int define_count = 0;
    uint32_t M = 0, N = 0, K = 0, bm = 0, bn = 0;
    int b_buffer = 0, a_half = 0, repeats = 10, compile_only = 0, bias = 0;
    const char *b_format = "rgba16f";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--shader") && v) shader = argv[++i];
        else if (!strcmp(a, "--include") && v) include_dir = argv[++i];
        else if (!strcmp(a, "-D") && v && define_count < 64) defines[define_count++] = argv[++i];
        else if (!strcmp(a, "--M") && v) M = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--N") && v) N = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--K") && v) K = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--bm") && v) bm = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--bn") && v) bn = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--b-buffer")) b_buffer = 1;
        else if (!strcmp(a, "--a-half")) a_half = 1;
        else if (!strcmp(a, "--b-format") && v) b_format = argv[++i];
        else if (!strcmp(a, "--repeats") && v) repeats = atoi(argv[++i]);
        else if (!strcmp(a, "--label") && v) label = argv[++i];
        else if (!strcmp(a, "--compile-only")) compile_only = 1;
        else if (!strcmp(a, "--bias")) bias = 1;
        else {
            fprintf(stderr, "usage: gemm-lab --shader FILE [--include DIR] [-D NAME=VALUE]... --M m --N n --K k "
                            "--bm BM --bn BN [--b-buffer] [--a-half] [--repeats R] [--label TEXT] [--compile-only] [--bias]\n");
            return 2;
        }
    }
    if (!shader || !M || !N || !K || !bm || !bn || N % 4 || K % 4) {
        fprintf(stderr, "gemm-lab: --shader, --M, --N, --K (N and K multiples of 4), --bm and --bn are needed\n");
        return 2;
    }
    if (!label) label = shader;

    /* GLSL → SPIR-V, optimized as fmc compiles its kernels */
    size_t source_length;
    char *source = slurp(shader, &source_length);
    shaderc_compiler_t compiler = shaderc_compiler_initialize();
    shaderc_compile_options_t options = shaderc_compile_options_initialize();
    shaderc_compile_options_set_target_env(options, shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_2);
    shaderc_compile_options_set_optimization_level(options, shaderc_optimization_level_performance);
    shaderc_compile_options_set_include_callbacks(options, resolve, release, NULL);
    for (int i = 0; i < define_count; i++) {
        const char *eq = strchr(defines[i], '=');
        size_t name_length = eq ? (size_t)(eq - defines[i]) : strlen(defines[i]);
        const char *value = eq ? eq + 1 : "1";
        shaderc_compile_options_add_macro_definition(options, defines[i], name_length, value, strlen(value));
    }
    shaderc_compilation_result_t spv = shaderc_compile_into_spv(compiler, source, source_length,
                                                                shaderc_glsl_compute_shader, shader, "main", options);
    if (shaderc_result_get_compilation_status(spv) != shaderc_compilation_status_success) {
        fprintf(stderr, "gemm-lab: %s: %s\n", shader, shaderc_result_get_error_message(spv));
        return 1;
    }

    if (compile_only) {  /* the shader builds with these defines (checked where no device has the units) */
        printf("%s: compiled, %zu bytes of SPIR-V\n", label, shaderc_result_get_length(spv));
        return 0;
    }
    LabDevice lab = lab_open("gemm-lab", -1, 0);  /* the first discrete GPU, else the first device */
    physical = lab.physical;
    device = lab.device;
    VkCommandBuffer cb = lab.cb;

    /* data: A[M][K], B's texels (K · NB, then NB bias texels: zeros unless --bias), fp16-exact values */
    const uint32_t NB = N / 4;
    /* Rows of B are NB texels of 4, or for rgba32ui whole texels of 8 (fmc's half8 images: a row of NB = 2j + 1
     * blocks ends with 4 zeros). */
    const int half8 = !strcmp(b_format, "rgba32ui");
    const uint32_t ldb = half8 ? (N + 7) / 8 * 8 : N;  /* halves per row of B */
    const uint64_t texels = (uint64_t)(K + 1) * ldb / 4;
    /* The weight image holds the same bytes in any of three formats: rgba16f (what fmc's images are), rg32ui (the
     * same 8-byte texels read as raw bits), rgba32ui (16-byte texels, 8 halves each: half as wide). */
    VkFormat image_format = VK_FORMAT_R16G16B16A16_SFLOAT;
    uint32_t texel_shift = 0;  /* log2 of the texel's size over 8 bytes */
    if (!strcmp(b_format, "rg32ui")) image_format = VK_FORMAT_R32G32_UINT;
    else if (!strcmp(b_format, "rgba32ui")) { image_format = VK_FORMAT_R32G32B32A32_UINT; texel_shift = 1; }
    else if (strcmp(b_format, "rgba16f")) { fprintf(stderr, "gemm-lab: --b-format is rgba16f, rg32ui or rgba32ui\n"); return 2; }
    const uint32_t log2W = 12 - texel_shift, log2H = 10;
    const uint64_t layer_texels = 1ull << (log2W + log2H + texel_shift);  /* in 8-byte units */
    const uint32_t layers = (uint32_t)((texels + layer_texels - 1) / layer_texels);
    float *a = malloc(sizeof(float) * M * K);
    uint16_t *a16 = malloc(2ull * M * K);
    for (uint64_t i = 0; i < (uint64_t)M * K; i++) { a[i] = next_value(); a16[i] = to_half(a[i]); }
    uint16_t *b16 = calloc(layer_texels * layers * 4, 2);
    for (uint64_t k = 0; k < K; k++)
        for (uint64_t n = 0; n < N; n++) b16[k * ldb + n] = to_half(next_value());
    if (bias)  /* the bias row after B's K rows (fmc's layout; kernels that read it add it), checked below */
        for (uint64_t n = 0; n < N; n++) b16[(uint64_t)K * ldb + n] = to_half(next_value());

    VkDeviceSize a_bytes = a_half ? 2ull * M * K : 4ull * M * K;
    VkDeviceSize b_bytes = 8ull * layer_texels * layers;
    VkDeviceSize y_bytes = 4ull * M * N;
    Buffer staging = make_buffer(a_bytes > b_bytes ? (a_bytes > y_bytes ? a_bytes : y_bytes)
                                                   : (b_bytes > y_bytes ? b_bytes : y_bytes),
                                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT, 1);
    const VkBufferUsageFlags storage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT
                                     | VK_BUFFER_USAGE_TRANSFER_SRC_BIT;
    Buffer ab = make_buffer(a_bytes, storage, 0);
    Buffer yb = make_buffer(y_bytes, storage, 0);
    Buffer bb = {0};
    VkImage image = VK_NULL_HANDLE;
    VkImageView view = VK_NULL_HANDLE;
    if (b_buffer) {
        bb = make_buffer(b_bytes, storage, 0);
    } else {
        VkImageCreateInfo imci = {VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO};
        imci.imageType = VK_IMAGE_TYPE_2D;
        imci.format = image_format;
        imci.extent = (VkExtent3D){1u << log2W, 1u << log2H, 1};
        imci.mipLevels = 1;
        imci.arrayLayers = layers;
        imci.samples = VK_SAMPLE_COUNT_1_BIT;
        imci.tiling = VK_IMAGE_TILING_OPTIMAL;
        imci.usage = VK_IMAGE_USAGE_STORAGE_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT;
        CHECK(vkCreateImage(device, &imci, NULL, &image));
        VkMemoryRequirements req;
        vkGetImageMemoryRequirements(device, image, &req);
        VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        mai.allocationSize = req.size;
        mai.memoryTypeIndex = memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        VkDeviceMemory memory;
        CHECK(vkAllocateMemory(device, &mai, NULL, &memory));
        CHECK(vkBindImageMemory(device, image, memory, 0));
        VkImageViewCreateInfo ivci = {VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO};
        ivci.image = image;
        ivci.viewType = VK_IMAGE_VIEW_TYPE_2D_ARRAY;
        ivci.format = imci.format;
        ivci.subresourceRange = (VkImageSubresourceRange){VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, layers};
        CHECK(vkCreateImageView(device, &ivci, NULL, &view));
    }

    /* uploads through the one staging buffer */
    if (a_half) memcpy(staging.host, a16, a_bytes); else memcpy(staging.host, a, a_bytes);
    lab_begin(&lab);
    VkBufferCopy region = {0, 0, a_bytes};
    vkCmdCopyBuffer(cb, staging.buffer, ab.buffer, 1, &region);
    lab_submit(&lab);
    memcpy(staging.host, b16, b_bytes);
    lab_begin(&lab);
    if (b_buffer) {
        VkBufferCopy bregion = {0, 0, b_bytes};
        vkCmdCopyBuffer(cb, staging.buffer, bb.buffer, 1, &bregion);
    } else {
        VkImageMemoryBarrier to_dst = {VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER};
        to_dst.srcQueueFamilyIndex = to_dst.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
        to_dst.oldLayout = VK_IMAGE_LAYOUT_UNDEFINED;
        to_dst.newLayout = VK_IMAGE_LAYOUT_GENERAL;
        to_dst.dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        to_dst.image = image;
        to_dst.subresourceRange = (VkImageSubresourceRange){VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, layers};
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, NULL, 0,
                             NULL, 1, &to_dst);
        VkBufferImageCopy copy = {0};
        copy.imageSubresource = (VkImageSubresourceLayers){VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, layers};
        copy.imageExtent = (VkExtent3D){1u << log2W, 1u << log2H, 1};
        vkCmdCopyBufferToImage(cb, staging.buffer, image, VK_IMAGE_LAYOUT_GENERAL, 1, &copy);
    }
    vkCmdFillBuffer(cb, yb.buffer, 0, VK_WHOLE_SIZE, 0x7fc00000u);  /* NaN: an output never written shows */
    VkMemoryBarrier after = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    after.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    after.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &after, 0,
                         NULL, 0, NULL);
    lab_submit(&lab);

    /* pipeline */
    VkDescriptorSetLayoutBinding bindings[4] = {
        {0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL},
        {1, b_buffer ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER : VK_DESCRIPTOR_TYPE_STORAGE_IMAGE, 1,
         VK_SHADER_STAGE_COMPUTE_BIT, NULL},
        {2, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL},
        {3, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL},
    };
    VkDescriptorSetLayoutCreateInfo dslci = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dslci.bindingCount = 4;
    dslci.pBindings = bindings;
    VkDescriptorSetLayout dsl;
    CHECK(vkCreateDescriptorSetLayout(device, &dslci, NULL, &dsl));
    VkPushConstantRange push_range = {VK_SHADER_STAGE_COMPUTE_BIT, 0, 60};
    VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &dsl;
    plci.pushConstantRangeCount = 1;
    plci.pPushConstantRanges = &push_range;
    VkPipelineLayout layout;
    CHECK(vkCreatePipelineLayout(device, &plci, NULL, &layout));
    VkShaderModuleCreateInfo smci = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smci.codeSize = shaderc_result_get_length(spv);
    smci.pCode = (const uint32_t *)shaderc_result_get_bytes(spv);
    VkShaderModule module;
    CHECK(vkCreateShaderModule(device, &smci, NULL, &module));
    VkComputePipelineCreateInfo pci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    pci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    pci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    pci.stage.module = module;
    pci.stage.pName = "main";
    pci.layout = layout;
    VkPipeline pipeline;
    CHECK(vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &pci, NULL, &pipeline));

    VkDescriptorPoolSize sizes[2] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 4}, {VK_DESCRIPTOR_TYPE_STORAGE_IMAGE, 1}};
    VkDescriptorPoolCreateInfo dpci = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.maxSets = 1;
    dpci.poolSizeCount = 2;
    dpci.pPoolSizes = sizes;
    VkDescriptorPool pool;
    CHECK(vkCreateDescriptorPool(device, &dpci, NULL, &pool));
    VkDescriptorSetAllocateInfo dsai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dsai.descriptorPool = pool;
    dsai.descriptorSetCount = 1;
    dsai.pSetLayouts = &dsl;
    VkDescriptorSet set;
    CHECK(vkAllocateDescriptorSets(device, &dsai, &set));
    VkDescriptorBufferInfo infos[4] = {{ab.buffer, 0, VK_WHOLE_SIZE}, {bb.buffer, 0, VK_WHOLE_SIZE},
                                       {yb.buffer, 0, VK_WHOLE_SIZE}, {ab.buffer, 0, VK_WHOLE_SIZE}};
    VkDescriptorImageInfo image_info = {VK_NULL_HANDLE, view, VK_IMAGE_LAYOUT_GENERAL};
    VkWriteDescriptorSet writes[4];
    for (int i = 0; i < 4; i++) {
        writes[i] = (VkWriteDescriptorSet){VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = set;
        writes[i].dstBinding = (uint32_t)i;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = bindings[i].descriptorType;
        if (i == 1 && !b_buffer) writes[i].pImageInfo = &image_info;
        else writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(device, 4, writes, 0, NULL);

    struct { uint32_t M, N, K, NB, strideM, strideK, kPerSlice, slices, log2W, log2H; float beta;
             uint32_t cStrideM, cStrideN, n0, ldY; } push = {M, N, K, NB, K, 1, K, 1, log2W, log2H, 0.0f, 0, 0, 0, N};
    const uint32_t groups_x = (NB + bn / 4 - 1) / (bn / 4), groups_y = (M + bm - 1) / bm;
    double *times = calloc((size_t)repeats, sizeof *times);
    for (int r = 0; r <= repeats; r++) {  /* the first is a warm-up */
        lab_begin(&lab);
        vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
        vkCmdPushConstants(cb, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 60, &push);
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, lab.timestamps, 0);
        vkCmdDispatch(cb, groups_x, groups_y, 1);
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, lab.timestamps, 1);
        lab_submit(&lab);
        if (r > 0) times[r - 1] = lab_elapsed_ms(&lab);
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    double median = times[repeats / 2], best = times[0];

    /* read Y back and check 256 sampled outputs */
    lab_begin(&lab);
    VkMemoryBarrier to_host = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &to_host, 0,
                         NULL, 0, NULL);
    VkBufferCopy yregion = {0, 0, y_bytes};
    vkCmdCopyBuffer(cb, yb.buffer, staging.buffer, 1, &yregion);
    lab_submit(&lab);
    const float *y = staging.host;
    double diff = 0, norm = 0;
    for (int s = 0; s < 256; s++) {
        uint32_t m = (uint32_t)((s * 2654435761u) % M), n = (uint32_t)((s * 40503u + 17u) % N);
        if (s == 0) { m = M - 1; n = N - 1; }
        double ref = bias ? from_half(b16[(uint64_t)K * ldb + n]) : 0;
        for (uint32_t k = 0; k < K; k++) ref += (double)from_half(a16[(uint64_t)m * K + k]) * from_half(b16[(uint64_t)k * ldb + n]);
        diff += (y[(uint64_t)m * N + n] - ref) * (y[(uint64_t)m * N + n] - ref);
        norm += ref * ref;
    }
    double error = sqrt(diff / (norm > 0 ? norm : 1));
    double tflops = 2.0 * M * N * K / (median * 1e-3) / 1e12;
    printf("%-44s %5ux%5ux%5u  median %8.3f ms  best %8.3f ms  %7.1f TFLOP/s  error %.1e%s\n", label, M, N, K, median,
           best, tflops, error, !(error <= 1e-2) ? "  WRONG" : "");
    fflush(stdout);
    lab_close(&lab);
    return !(error <= 1e-2) ? 3 : 0;
}
