/* copyshapes: how fast the transfer queue copies host-visible staging into weight images of a given shape. fmrun's
 * streamed runs copy at 28-30 GB/s on an H100 where vkprobe's one 1 GiB copy into a 2048 x 2048 x 32 RGBA16F image
 * reaches 51 GB/s, with or without the host decoding at the same time (Benchmarks/README.md, 2026-12-07). Our
 * copies differ in their destination: 2D-array images of 16-byte texels (half8: rgba32ui), 1024 texels wide in
 * layers of 16-32 rows, copied in regions of whole layers of ~3 MiB. (On an H100 a copy cost its bytes at ~51 GB/s
 * plus ~2.8 us per layer: results/h100-copyshapes-2026-12-08.txt; fmc has taken fewer layers since.) This times,
 * per shape, copying
 * TOTAL bytes from one staging buffer (HOST_VISIBLE | HOST_COHERENT, as fmrun's ring) into one image of that shape
 * in regions of REGION bytes (whole layers), each region one vkCmdCopyBufferToImage in one command buffer, the
 * whole between two transfer-queue timestamps; and the same bytes into a device-local buffer (vkCmdCopyBuffer) as
 * the reference. Prints GB/s (1e9 bytes), the median of the repeats.
 *
 * The Vulkan set-up is Benchmarks/coopmat/lab_vulkan.h's, with a transfer-only queue where the device has one (as
 * fmrun's streamer uses).
 *
 *   cc -O2 -o copyshapes Benchmarks/copyshapes/copyshapes.c -lvulkan
 *   ./copyshapes [--device N] [--total-mib 64] [--region-kib 3072] [--repeats 5]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#include "../coopmat/lab_vulkan.h"

#define CHECK(call) LAB_CHECK("copyshapes", call)

static LabDevice d;

static VkDeviceMemory allocate(VkMemoryRequirements req, VkMemoryPropertyFlags want) {
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                .memoryTypeIndex = lab_memory_type(d.tool, d.physical, req.memoryTypeBits, want)};
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(d.device, &mai, NULL, &memory));
    return memory;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Begins recording, with timestamp 0 before the work. */
static void begin(void) {
    lab_begin(&d);
    vkCmdWriteTimestamp(d.cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, d.timestamps, 0);
}

/* Writes timestamp 1, submits, waits and returns the GPU seconds between the two. */
static double submitTimed(void) {
    vkCmdWriteTimestamp(d.cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, d.timestamps, 1);
    lab_submit(&d);
    return lab_elapsed_ms(&d) * 1e-3;
}

/* Rates of one image's copy, GB/s (medians over the repeats): `whole` between the two timestamps around all of it;
 * then again with a timestamp before (TOP_OF_PIPE) and after (BOTTOM_OF_PIPE) every region, as fmrun times its
 * copies: `stamped` between the outer two, `summed` over the sum of the regions' intervals (fmrun's "copy
 * bandwidth"), `unioned` over the union of those intervals. If regions' intervals overlap, summed < unioned. */
typedef struct { double whole, stamped, summed, unioned; } Rates;

static int compareStart(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Rates of copying layers x (width x height texels of `texel` bytes) into a fresh image, regions of whole layers of
 * at most `region` bytes (at least one layer). */
static Rates imageCopy(VkBuffer staging, VkFormat format, uint32_t texel, uint32_t width, uint32_t height,
                       uint32_t layers, uint64_t region, int repeats, int *regions) {
    VkImageCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .imageType = VK_IMAGE_TYPE_2D,
                             .format = format, .extent = {width, height, 1}, .mipLevels = 1, .arrayLayers = layers,
                             .samples = VK_SAMPLE_COUNT_1_BIT, .tiling = VK_IMAGE_TILING_OPTIMAL,
                             .usage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_STORAGE_BIT,
                             .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
    VkImage image;
    CHECK(vkCreateImage(d.device, &ici, NULL, &image));
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(d.device, image, &req);
    VkDeviceMemory memory = allocate(req, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    CHECK(vkBindImageMemory(d.device, image, memory, 0));
    uint64_t layerBytes = (uint64_t)width * height * texel;
    uint32_t perRegion = region / layerBytes > 0 ? (uint32_t)(region / layerBytes) : 1;
    uint32_t regionCount = (layers + perRegion - 1) / perRegion;
    VkQueryPoolCreateInfo qpci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                  .queryCount = 2 * regionCount};
    VkQueryPool stamps;
    CHECK(vkCreateQueryPool(d.device, &qpci, NULL, &stamps));
    uint64_t *ticks = calloc(2 * (size_t)regionCount, sizeof *ticks);
    double period = d.props.limits.timestampPeriod * 1e-9, bytes = (double)(layerBytes * layers);
    double *rates[4];
    for (int k = 0; k < 4; k++) rates[k] = calloc((size_t)repeats, sizeof(double));
    for (int pass = 0; pass < 2 * repeats; pass++) {
        int r = pass / 2, stamped = pass % 2;
        if (stamped) vkResetQueryPool(d.device, stamps, 0, 2 * regionCount);
        begin();
        VkImageMemoryBarrier to = {.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                                   .oldLayout = VK_IMAGE_LAYOUT_UNDEFINED, .newLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                   .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                   .image = image, .subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, layers}};
        vkCmdPipelineBarrier(d.cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, NULL, 0, NULL, 1, &to);
        *regions = 0;
        for (uint32_t layer = 0; layer < layers; layer += perRegion) {
            uint32_t count = layers - layer < perRegion ? layers - layer : perRegion;
            VkBufferImageCopy copy = {.bufferOffset = layer * layerBytes,
                                      .imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, layer, count},
                                      .imageExtent = {width, height, 1}};
            if (stamped) vkCmdWriteTimestamp(d.cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, stamps, 2 * *regions);
            vkCmdCopyBufferToImage(d.cb, staging, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &copy);
            if (stamped) vkCmdWriteTimestamp(d.cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, stamps, 2 * *regions + 1);
            ++*regions;
        }
        double seconds = submitTimed();
        if (!stamped) { rates[0][r] = bytes / seconds / 1e9; continue; }
        rates[1][r] = bytes / seconds / 1e9;
        CHECK(vkGetQueryPoolResults(d.device, stamps, 0, 2 * regionCount, 2 * regionCount * sizeof *ticks, ticks,
                                    sizeof *ticks, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        double summed = 0, unioned = 0;
        for (uint32_t i = 0; i < regionCount; i++) summed += (double)(ticks[2 * i + 1] - ticks[2 * i]) * period;
        qsort(ticks, regionCount, 2 * sizeof *ticks, compareStart);  /* (start, end) pairs by start */
        uint64_t from = ticks[0], until = ticks[1];
        for (uint32_t i = 1; i <= regionCount; i++) {
            if (i < regionCount && ticks[2 * i] <= until) {
                if (ticks[2 * i + 1] > until) until = ticks[2 * i + 1];
                continue;
            }
            unioned += (double)(until - from) * period;
            if (i < regionCount) { from = ticks[2 * i]; until = ticks[2 * i + 1]; }
        }
        rates[2][r] = bytes / summed / 1e9;
        rates[3][r] = bytes / unioned / 1e9;
    }
    double medians[4];
    for (int k = 0; k < 4; k++) {
        qsort(rates[k], (size_t)repeats, sizeof(double), compare);
        medians[k] = rates[k][repeats / 2];
        free(rates[k]);
    }
    free(ticks);
    vkDestroyQueryPool(d.device, stamps, NULL);
    vkDestroyImage(d.device, image, NULL);
    vkFreeMemory(d.device, memory, NULL);
    return (Rates){medians[0], medians[1], medians[2], medians[3]};
}

static double bufferCopy(VkBuffer staging, VkBuffer target, uint64_t total, uint64_t region, int repeats) {
    double *gbps = calloc((size_t)repeats, sizeof *gbps);
    for (int r = 0; r < repeats; r++) {
        begin();
        for (uint64_t at = 0; at < total; at += region) {
            VkBufferCopy copy = {.srcOffset = at, .dstOffset = at, .size = total - at < region ? total - at : region};
            vkCmdCopyBuffer(d.cb, staging, target, 1, &copy);
        }
        gbps[r] = (double)total / submitTimed() / 1e9;
    }
    qsort(gbps, (size_t)repeats, sizeof *gbps, compare);
    double median = gbps[repeats / 2];
    free(gbps);
    return median;
}

int main(int argc, char **argv) {
    int device = -1;
    uint64_t total = 64ull << 20, region = 3072ull << 10;
    int repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--total-mib")) total = (uint64_t)atoll(argv[i + 1]) << 20;
        else if (!strcmp(argv[i], "--region-kib")) region = (uint64_t)atoll(argv[i + 1]) << 10;
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: copyshapes [--device N] [--total-mib 64] [--region-kib 3072] [--repeats 5]\n");
            return 1;
        }
    }
    if (total == 0 || region == 0 || repeats < 1) { fprintf(stderr, "copyshapes: sizes and repeats must be > 0\n"); return 1; }

    d = lab_open_queue("copyshapes", device, 0, 1);
    VkQueueFamilyProperties families[32];
    uint32_t familyCount = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(d.physical, &familyCount, families);
    int dedicated = !(families[d.family].queueFlags & VK_QUEUE_COMPUTE_BIT);
    printf("device %s, queue family %u (%s), %.0f MiB per shape, regions of %.0f KiB, median of %d\n",
           d.props.deviceName, d.family, dedicated ? "transfer only" : "no transfer-only family", total / 1048576.0,
           region / 1024.0, repeats);

    /* The staging buffer, as fmrun's ring: host-visible and coherent, filled once. */
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = total,
                              .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT};
    VkBuffer staging, target;
    CHECK(vkCreateBuffer(d.device, &bci, NULL, &staging));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d.device, staging, &req);
    VkDeviceMemory stagingMemory = allocate(req, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    CHECK(vkBindBufferMemory(d.device, staging, stagingMemory, 0));
    void *mapped;
    CHECK(vkMapMemory(d.device, stagingMemory, 0, VK_WHOLE_SIZE, 0, &mapped));
    for (uint64_t i = 0; i < total / 8; i++) ((uint64_t *)mapped)[i] = i * 0x9E3779B97F4A7C15ull;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    CHECK(vkCreateBuffer(d.device, &bci, NULL, &target));
    vkGetBufferMemoryRequirements(d.device, target, &req);
    VkDeviceMemory targetMemory = allocate(req, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    CHECK(vkBindBufferMemory(d.device, target, targetMemory, 0));

    printf("%-34s %10s %8s %8s   %s\n", "destination", "bytes", "regions", "GB/s",
           "with a timestamp around every region: GB/s overall, over Σ intervals, over their union");
    printf("%-34s %10llu %8llu %8.1f\n", "buffer", (unsigned long long)total,
           (unsigned long long)((total + region - 1) / region), bufferCopy(staging, target, total, region, repeats));
    printf("%-34s %10llu %8d %8.1f\n", "buffer, one copy", (unsigned long long)total, 1,
           bufferCopy(staging, target, total, total, repeats));
    /* half8 (rgba32ui, 16-byte texels) as gemm_cm's weights, and rgba16f (8 bytes) as vkprobe's and the plain
     * kernels' weights; widths of a few hundred texels to vkprobe's 2048 (fmc's large weights are 1024 wide, in
     * layers of 16 or 32 rows); layers of 16 to 256 rows. */
    const struct { VkFormat format; uint32_t texel; const char *name; } formats[] = {
        {VK_FORMAT_R32G32B32A32_UINT, 16, "rgba32ui"}, {VK_FORMAT_R16G16B16A16_SFLOAT, 8, "rgba16f"}};
    const uint32_t widths[] = {96, 384, 1024, 2048}, heights[] = {16, 32, 256};
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
            for (size_t h = 0; h < sizeof heights / sizeof heights[0]; h++) {
                uint64_t layerBytes = (uint64_t)widths[w] * heights[h] * formats[f].texel;
                uint64_t layers = total / layerBytes;
                if (layers > d.props.limits.maxImageArrayLayers) layers = d.props.limits.maxImageArrayLayers;
                if (layers == 0) continue;
                int regions = 0;
                Rates rate = imageCopy(staging, formats[f].format, formats[f].texel, widths[w], heights[h],
                                       (uint32_t)layers, region, repeats, &regions);
                char name[64];
                snprintf(name, sizeof name, "%s %u x %u x %llu", formats[f].name, widths[w], heights[h],
                         (unsigned long long)layers);
                printf("%-34s %10llu %8d %8.1f   %8.1f %8.1f %8.1f\n", name, (unsigned long long)(layerBytes * layers),
                       regions, rate.whole, rate.stamped, rate.summed, rate.unioned);
            }
        }
    }
    lab_close(&d);
    return 0;
}
