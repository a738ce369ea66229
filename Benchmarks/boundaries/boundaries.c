/* boundaries: what a compute-submission boundary costs on the GPU, and why. A streamed run cuts its steps into
 * submissions that signal and wait on timeline semaphores (ExecutionPlan.streamingBatches); fmrun's traces put
 * each cut at 20-27 us between two kernels on an H200 (Benchmarks/results/h200-trace-gaps-2026-12-04.txt), with
 * or without a wait. This times N submissions of one small dispatch each, several ways, and prints the gap between
 * one dispatch's end and the next one's start (GPU timestamps; median and 90th percentile):
 *
 *   one          all N dispatches in one command buffer, a compute barrier between them (the in-submission gap)
 *   plain        one vkQueueSubmit per dispatch, no semaphores
 *   signal       each submission signals the compute timeline
 *   chain        each also waits for the previous one's value (already submitted on the same queue)
 *   host-done    each waits for a value the host signalled before submitting
 *   xq-before    each waits for a value a transfer-queue submission signals, submitted before it
 *   xq-after     the same, but the transfer submissions follow all compute submissions (wait before signal,
 *                as fmrun's streamer thread often does)
 *   one-call     `signal`, but every VkSubmitInfo in one vkQueueSubmit
 *
 *   cc -O2 -o boundaries Benchmarks/boundaries/boundaries.c -lvulkan
 *   ./boundaries [--device N] [--count N] [--repeats R]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#define CHECK(call)                                                                                    \
    do {                                                                                               \
        VkResult r_ = (call);                                                                          \
        if (r_ != VK_SUCCESS) { fprintf(stderr, "boundaries: %s failed: %d\n", #call, r_); exit(2); } \
    } while (0)

/* empty.spvasm, assembled with `spirv-as --target-env vulkan1.1`. */
static const uint32_t kEmptySpirv[] = {
    0x07230203, 0x00010300, 0x00070000, 0x00000005, 0x00000000, 0x00020011, 0x00000001, 0x0003000e, 0x00000000,
    0x00000001, 0x0005000f, 0x00000005, 0x00000001, 0x6e69616d, 0x00000000, 0x00060010, 0x00000001, 0x00000011,
    0x00000040, 0x00000001, 0x00000001, 0x00020013, 0x00000002, 0x00030021, 0x00000003, 0x00000002, 0x00050036,
    0x00000002, 0x00000001, 0x00000000, 0x00000003, 0x000200f8, 0x00000004, 0x000100fd, 0x00010038};

static VkDevice device;
static VkQueue computeQueue, transferQueue;
static uint32_t computeFamily, transferFamily;
static VkPipeline pipeline;
static VkPipelineLayout layout;
static VkQueryPool queries;
static double nsPerTick;
static uint64_t tickMask;

static VkSemaphore timeline(void) {
    VkSemaphoreTypeCreateInfo type = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
                                      .semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE};
    VkSemaphoreCreateInfo info = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, .pNext = &type};
    VkSemaphore s;
    CHECK(vkCreateSemaphore(device, &info, NULL, &s));
    return s;
}

static void waitValue(VkSemaphore s, uint64_t value) {
    VkSemaphoreWaitInfo info = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO, .semaphoreCount = 1,
                                .pSemaphores = &s, .pValues = &value};
    CHECK(vkWaitSemaphores(device, &info, 10ull * 1000 * 1000 * 1000));
}

/* Timestamps 2i and 2i+1 around dispatch i of `first`..`first + n`, with a barrier before each but the first. */
static void record(VkCommandBuffer cb, int first, int n) {
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    CHECK(vkBeginCommandBuffer(cb, &begin));
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    for (int i = first; i < first + n; i++) {
        if (i > first) {
            VkMemoryBarrier barrier = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                       .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                                       .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
            vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                                 &barrier, 0, NULL, 0, NULL);
        }
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries, (uint32_t)(2 * i));
        vkCmdDispatch(cb, 1, 1, 1);
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries, (uint32_t)(2 * i + 1));
    }
    CHECK(vkEndCommandBuffer(cb));
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum Mode { ONE, PLAIN, SIGNAL, CHAIN, HOST_DONE, XQ_BEFORE, XQ_AFTER, ONE_CALL, MODES };
static const char *kNames[MODES] = {"one", "plain", "signal", "chain", "host-done", "xq-before", "xq-after", "one-call"};

int main(int argc, char **argv) {
    unsigned want = 0;
    int count = 64, repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) want = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: boundaries [--device N] [--count N] [--repeats R]\n"); return 1; }
    }
    if (count < 2 || repeats < 1) { fprintf(stderr, "boundaries: --count must be >= 2, --repeats >= 1\n"); return 1; }

    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    CHECK(vkCreateInstance(&ici, NULL, &instance));
    uint32_t n = 0;
    CHECK(vkEnumeratePhysicalDevices(instance, &n, NULL));
    if (want >= n) { fprintf(stderr, "boundaries: no device %u (%u found)\n", want, n); return 1; }
    VkPhysicalDevice *all = calloc(n, sizeof *all);
    CHECK(vkEnumeratePhysicalDevices(instance, &n, all));
    VkPhysicalDevice physical = all[want];
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(physical, &props);
    nsPerTick = props.limits.timestampPeriod;

    uint32_t families = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &families, NULL);
    VkQueueFamilyProperties *fp = calloc(families, sizeof *fp);
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &families, fp);
    computeFamily = transferFamily = UINT32_MAX;
    for (uint32_t f = 0; f < families; f++) {
        if ((fp[f].queueFlags & VK_QUEUE_COMPUTE_BIT) && computeFamily == UINT32_MAX) computeFamily = f;
        if ((fp[f].queueFlags & VK_QUEUE_TRANSFER_BIT) && !(fp[f].queueFlags & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT))
            && transferFamily == UINT32_MAX) transferFamily = f;
    }
    int separate = transferFamily != UINT32_MAX;
    if (!separate) transferFamily = computeFamily;
    uint32_t bits = fp[computeFamily].timestampValidBits;
    tickMask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    printf("device %s, timestamp period %.3f ns, transfer queue %s\n", props.deviceName, nsPerTick,
           separate ? "of its own family" : "none (the compute queue serves)");

    float priority = 1;
    VkDeviceQueueCreateInfo qci[2] = {
        {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = computeFamily, .queueCount = 1,
         .pQueuePriorities = &priority},
        {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = transferFamily, .queueCount = 1,
         .pQueuePriorities = &priority}};
    VkPhysicalDeviceVulkan12Features v12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .timelineSemaphore = VK_TRUE, .hostQueryReset = VK_TRUE};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &v12,
                              .queueCreateInfoCount = separate ? 2 : 1, .pQueueCreateInfos = qci};
    CHECK(vkCreateDevice(physical, &dci, NULL, &device));
    vkGetDeviceQueue(device, computeFamily, 0, &computeQueue);
    vkGetDeviceQueue(device, transferFamily, 0, &transferQueue);

    VkShaderModuleCreateInfo smci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                     .codeSize = sizeof kEmptySpirv, .pCode = kEmptySpirv};
    VkShaderModule module;
    CHECK(vkCreateShaderModule(device, &smci, NULL, &module));
    VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    CHECK(vkCreatePipelineLayout(device, &plci, NULL, &layout));
    VkComputePipelineCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = module, .pName = "main"},
        .layout = layout};
    CHECK(vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &cpci, NULL, &pipeline));
    VkQueryPoolCreateInfo qpci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                  .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = (uint32_t)(2 * count)};
    CHECK(vkCreateQueryPool(device, &qpci, NULL, &queries));

    VkCommandPool pools[2];
    for (int q = 0; q < 2; q++) {
        VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                       .queueFamilyIndex = q ? transferFamily : computeFamily};
        CHECK(vkCreateCommandPool(device, &cpi, NULL, &pools[q]));
    }
    VkCommandBuffer *each = calloc((size_t)count, sizeof *each), whole, empty;
    VkCommandBufferAllocateInfo cbai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pools[0],
                                        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = (uint32_t)count};
    CHECK(vkAllocateCommandBuffers(device, &cbai, each));
    cbai.commandBufferCount = 1;
    CHECK(vkAllocateCommandBuffers(device, &cbai, &whole));
    cbai.commandPool = pools[1];
    CHECK(vkAllocateCommandBuffers(device, &cbai, &empty));
    for (int i = 0; i < count; i++) record(each[i], i, 1);
    record(whole, 0, count);
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    CHECK(vkBeginCommandBuffer(empty, &begin));
    CHECK(vkEndCommandBuffer(empty));

    VkSemaphore computed = timeline(), host = timeline(), loaded = timeline();
    uint64_t computedValue = 0, hostValue = 0, loadedValue = 0;
    uint64_t *ticks = calloc((size_t)(2 * count), sizeof *ticks);
    double *gaps = calloc((size_t)(count * repeats), sizeof *gaps);
    VkSubmitInfo *infos = calloc((size_t)count, sizeof *infos);
    VkTimelineSemaphoreSubmitInfo *tinfos = calloc((size_t)count, sizeof *tinfos);
    uint64_t *signals = calloc((size_t)count, sizeof *signals), *waits = calloc((size_t)count, sizeof *waits);
    VkSemaphore *waitSems = calloc((size_t)count, sizeof *waitSems);
    VkPipelineStageFlags stage = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;

    printf("%-10s %9s %9s %9s   (gap between consecutive dispatches, us; %d dispatches x %d repeats)\n", "mode",
           "median", "p90", "mean", count, repeats);
    for (int mode = 0; mode < MODES; mode++) {
        if (mode == XQ_AFTER && !separate) {  /* one queue: waits before their signals would deadlock it */
            printf("%-10s (needs a transfer queue of its own)\n", kNames[mode]);
            continue;
        }
        int gapCount = 0;
        for (int r = 0; r < repeats + 1; r++) {  /* the first repeat warms up and is not counted */
            vkResetQueryPool(device, queries, 0, (uint32_t)(2 * count));
            if (mode == ONE) {
                VkTimelineSemaphoreSubmitInfo t = {.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
                                                   .signalSemaphoreValueCount = 1};
                uint64_t value = ++computedValue;
                t.pSignalSemaphoreValues = &value;
                VkSubmitInfo info = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .pNext = &t, .commandBufferCount = 1,
                                     .pCommandBuffers = &whole, .signalSemaphoreCount = 1,
                                     .pSignalSemaphores = &computed};
                CHECK(vkQueueSubmit(computeQueue, 1, &info, VK_NULL_HANDLE));
            } else {
                if (mode == HOST_DONE) {
                    VkSemaphoreSignalInfo si = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO, .semaphore = host,
                                                .value = hostValue + (uint64_t)count};
                    CHECK(vkSignalSemaphore(device, &si));
                }
                uint64_t loadedBase = loadedValue;
                /* The transfer queue's signals, one per compute submission (empty command buffers). */
                #define SUBMIT_TRANSFERS()                                                                        \
                    for (int i = 0; i < count; i++) {                                                             \
                        uint64_t v = ++loadedValue;                                                               \
                        VkTimelineSemaphoreSubmitInfo t = {.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO, \
                                                           .signalSemaphoreValueCount = 1, .pSignalSemaphoreValues = &v}; \
                        VkSubmitInfo info = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .pNext = &t,                   \
                                             .commandBufferCount = 1, .pCommandBuffers = &empty,                    \
                                             .signalSemaphoreCount = 1, .pSignalSemaphores = &loaded};              \
                        CHECK(vkQueueSubmit(transferQueue, 1, &info, VK_NULL_HANDLE));                              \
                    }
                if (mode == XQ_BEFORE) { SUBMIT_TRANSFERS(); }
                for (int i = 0; i < count; i++) {
                    signals[i] = ++computedValue;
                    tinfos[i] = (VkTimelineSemaphoreSubmitInfo){.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
                    infos[i] = (VkSubmitInfo){.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .pNext = &tinfos[i],
                                              .commandBufferCount = 1, .pCommandBuffers = &each[i]};
                    if (mode != PLAIN) {
                        tinfos[i].signalSemaphoreValueCount = 1;
                        tinfos[i].pSignalSemaphoreValues = &signals[i];
                        infos[i].signalSemaphoreCount = 1;
                        infos[i].pSignalSemaphores = &computed;
                    }
                    int waiting = (mode == CHAIN && i > 0) || mode == HOST_DONE || mode == XQ_BEFORE || mode == XQ_AFTER;
                    if (waiting) {
                        waitSems[i] = mode == CHAIN ? computed : mode == HOST_DONE ? host : loaded;
                        waits[i] = mode == CHAIN ? signals[i] - 1 : mode == HOST_DONE ? hostValue + (uint64_t)i + 1
                                                                                       : loadedBase + (uint64_t)i + 1;
                        tinfos[i].waitSemaphoreValueCount = 1;
                        tinfos[i].pWaitSemaphoreValues = &waits[i];
                        infos[i].waitSemaphoreCount = 1;
                        infos[i].pWaitSemaphores = &waitSems[i];
                        infos[i].pWaitDstStageMask = &stage;
                    }
                    if (mode != ONE_CALL) CHECK(vkQueueSubmit(computeQueue, 1, &infos[i], VK_NULL_HANDLE));
                }
                if (mode == ONE_CALL) CHECK(vkQueueSubmit(computeQueue, (uint32_t)count, infos, VK_NULL_HANDLE));
                if (mode == XQ_AFTER) { SUBMIT_TRANSFERS(); }
                if (mode == PLAIN) {
                    /* Nothing signals: one more submission that does. */
                    uint64_t value = ++computedValue;
                    VkTimelineSemaphoreSubmitInfo t = {.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
                                                       .signalSemaphoreValueCount = 1, .pSignalSemaphoreValues = &value};
                    VkSubmitInfo info = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .pNext = &t,
                                         .signalSemaphoreCount = 1, .pSignalSemaphores = &computed};
                    CHECK(vkQueueSubmit(computeQueue, 1, &info, VK_NULL_HANDLE));
                }
                if (mode == HOST_DONE) hostValue += (uint64_t)count;
            }
            waitValue(computed, computedValue);
            CHECK(vkGetQueryPoolResults(device, queries, 0, (uint32_t)(2 * count), (size_t)(2 * count) * 8, ticks, 8,
                                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
            if (r == 0) continue;
            for (int i = 1; i < count; i++) {
                uint64_t gap = ((ticks[2 * i] & tickMask) - (ticks[2 * i - 1] & tickMask)) & tickMask;
                gaps[gapCount++] = (double)gap * nsPerTick / 1000.0;
            }
        }
        qsort(gaps, (size_t)gapCount, sizeof *gaps, compare);
        double sum = 0;
        for (int i = 0; i < gapCount; i++) sum += gaps[i];
        printf("%-10s %9.2f %9.2f %9.2f\n", kNames[mode], gaps[gapCount / 2], gaps[(gapCount * 9) / 10],
               sum / gapCount);
    }
    CHECK(vkDeviceWaitIdle(device));
    vkDestroyDevice(device, NULL);
    vkDestroyInstance(instance, NULL);
    return 0;
}
