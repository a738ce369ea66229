/* lab_vulkan.h — the Vulkan set-up coopmat-peak, gemm-lab and copyshapes share: one device (the one asked for, else
 * the first discrete GPU, else the first), one compute queue (or, for copyshapes, a transfer-only one) with
 * VK_NV_cooperative_matrix where offered, fp16 arithmetic, 16-bit storage and the memory model enabled, one command
 * buffer with its fence, and two timestamps around the work timed. Header-only (static functions): each tool is one
 * C file, built by its build script or one cc line. */
#ifndef LAB_VULKAN_H
#define LAB_VULKAN_H

#include <vulkan/vulkan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAB_CHECK(tool, x) do { VkResult r_ = (x); if (r_ != VK_SUCCESS) { \
    fprintf(stderr, "%s: %s failed: %d\n", (tool), #x, (int)r_); exit(1); } } while (0)

typedef struct {
    const char *tool;
    VkInstance instance;
    VkPhysicalDevice physical;
    VkPhysicalDeviceProperties props;
    VkDevice device;
    VkQueue queue;
    uint32_t family;
    int has_coopmat;        /* the device offers VK_NV_cooperative_matrix (then it is enabled) */
    VkCommandPool pool;
    VkCommandBuffer cb;     /* begun by lab_begin, submitted and waited for by lab_submit */
    VkFence fence;
    VkQueryPool timestamps; /* 2: lab_begin resets them; write 0 before and 1 after the work */
} LabDevice;

/* Opens device `index` (-1: the first discrete GPU, else the first device) with one queue: of a transfer-only family
 * with timestamps where `transfer_queue` asks for one and the device has it, else of the first compute family. Exits
 * with a message when there is none, or when `require_coopmat` and the device lacks VK_NV_cooperative_matrix. */
static LabDevice lab_open_queue(const char *tool, int index, int require_coopmat, int transfer_queue) {
    LabDevice d;
    memset(&d, 0, sizeof d);
    d.tool = tool;
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = tool;
    app.apiVersion = VK_API_VERSION_1_2;
    VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &app;
    LAB_CHECK(tool, vkCreateInstance(&ici, NULL, &d.instance));
    uint32_t count = 16;
    VkPhysicalDevice devices[16];
    VkResult listed = vkEnumeratePhysicalDevices(d.instance, &count, devices);
    if (listed != VK_SUCCESS && listed != VK_INCOMPLETE) LAB_CHECK(tool, listed);
    for (uint32_t i = 0; i < count && !d.physical; i++) {
        vkGetPhysicalDeviceProperties(devices[i], &d.props);
        if ((index >= 0 && (uint32_t)index == i)
            || (index < 0 && d.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU)) d.physical = devices[i];
    }
    if (!d.physical && index < 0 && count > 0) d.physical = devices[0];
    if (!d.physical) { fprintf(stderr, "%s: no such Vulkan device\n", tool); exit(1); }
    vkGetPhysicalDeviceProperties(d.physical, &d.props);

    uint32_t ext_count = 0;
    vkEnumerateDeviceExtensionProperties(d.physical, NULL, &ext_count, NULL);
    VkExtensionProperties *exts = calloc(ext_count, sizeof *exts);
    vkEnumerateDeviceExtensionProperties(d.physical, NULL, &ext_count, exts);
    for (uint32_t i = 0; i < ext_count; i++) d.has_coopmat |= !strcmp(exts[i].extensionName, "VK_NV_cooperative_matrix");
    free(exts);
    if (require_coopmat && !d.has_coopmat) {
        fprintf(stderr, "%s: %s does not offer VK_NV_cooperative_matrix\n", tool, d.props.deviceName);
        exit(1);
    }

    uint32_t family_count = 32;
    VkQueueFamilyProperties families[32];
    vkGetPhysicalDeviceQueueFamilyProperties(d.physical, &family_count, families);
    d.family = UINT32_MAX;
    for (uint32_t i = 0; transfer_queue && i < family_count && d.family == UINT32_MAX; i++)
        if ((families[i].queueFlags & VK_QUEUE_TRANSFER_BIT)
            && !(families[i].queueFlags & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT))
            && families[i].timestampValidBits > 0) d.family = i;
    for (uint32_t i = 0; i < family_count && d.family == UINT32_MAX; i++)
        if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d.family = i;
    if (d.family == UINT32_MAX) { fprintf(stderr, "%s: no compute queue\n", tool); exit(1); }
    float priority = 1;
    VkDeviceQueueCreateInfo qci = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = d.family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    coop.cooperativeMatrix = VK_TRUE;
    VkPhysicalDeviceVulkan12Features v12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    v12.shaderFloat16 = VK_TRUE;
    v12.vulkanMemoryModel = VK_TRUE;
    v12.hostQueryReset = VK_TRUE; /* timestamps are reset from the host: transfer-only queues cannot record resets */
    v12.pNext = d.has_coopmat ? &coop : NULL;
    VkPhysicalDeviceVulkan11Features v11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    v11.storageBuffer16BitAccess = VK_TRUE;
    v11.pNext = &v12;
    VkPhysicalDeviceFeatures2 f2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = &v11;
    const char *ext_names[] = {"VK_NV_cooperative_matrix"};
    VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &f2;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = d.has_coopmat ? 1 : 0;
    dci.ppEnabledExtensionNames = ext_names;
    LAB_CHECK(tool, vkCreateDevice(d.physical, &dci, NULL, &d.device));
    vkGetDeviceQueue(d.device, d.family, 0, &d.queue);

    VkCommandPoolCreateInfo cpci = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cpci.queueFamilyIndex = d.family;
    cpci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    LAB_CHECK(tool, vkCreateCommandPool(d.device, &cpci, NULL, &d.pool));
    VkCommandBufferAllocateInfo cbai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cbai.commandPool = d.pool;
    cbai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cbai.commandBufferCount = 1;
    LAB_CHECK(tool, vkAllocateCommandBuffers(d.device, &cbai, &d.cb));
    VkFenceCreateInfo fci = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    LAB_CHECK(tool, vkCreateFence(d.device, &fci, NULL, &d.fence));
    VkQueryPoolCreateInfo qpci = {VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qpci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qpci.queryCount = 2;
    LAB_CHECK(tool, vkCreateQueryPool(d.device, &qpci, NULL, &d.timestamps));
    return d;
}

static inline LabDevice lab_open(const char *tool, int index, int require_coopmat) {
    return lab_open_queue(tool, index, require_coopmat, 0);
}

/* The first memory type in `bits` with all of `flags`; exits with a message when there is none. */
static inline uint32_t lab_memory_type(const char *tool, VkPhysicalDevice physical, uint32_t bits, VkMemoryPropertyFlags flags) {
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(physical, &mem);
    for (uint32_t i = 0; i < mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mem.memoryTypes[i].propertyFlags & flags) == flags) return i;
    fprintf(stderr, "%s: no memory type with flags %x\n", tool, flags);
    exit(1);
}

/* Begins recording the command buffer, the timestamps reset from the host (vkCmdResetQueryPool is not valid on a
 * transfer-only queue; the previous submission has completed, so the queries are not in use). */
static void lab_begin(LabDevice *d) {
    vkResetQueryPool(d->device, d->timestamps, 0, 2);
    VkCommandBufferBeginInfo cbbi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    LAB_CHECK(d->tool, vkBeginCommandBuffer(d->cb, &cbbi));
}

/* Ends, submits and waits for the command buffer, then makes it ready to record again. */
static void lab_submit(LabDevice *d) {
    LAB_CHECK(d->tool, vkEndCommandBuffer(d->cb));
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &d->cb;
    LAB_CHECK(d->tool, vkQueueSubmit(d->queue, 1, &si, d->fence));
    LAB_CHECK(d->tool, vkWaitForFences(d->device, 1, &d->fence, VK_TRUE, UINT64_MAX));
    LAB_CHECK(d->tool, vkResetFences(d->device, 1, &d->fence));
    LAB_CHECK(d->tool, vkResetCommandBuffer(d->cb, 0));
}

/* Milliseconds between timestamps 0 and 1 of the last submission. */
static double lab_elapsed_ms(LabDevice *d) {
    uint64_t ts[2];
    LAB_CHECK(d->tool, vkGetQueryPoolResults(d->device, d->timestamps, 0, 2, sizeof ts, ts, 8,
                                             VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    return (double)(ts[1] - ts[0]) * d->props.limits.timestampPeriod * 1e-6;
}

/* Destroys the device and the instance (with everything the tool made on the device). */
static void lab_close(LabDevice *d) {
    vkDestroyDevice(d->device, NULL);
    vkDestroyInstance(d->instance, NULL);
}

#endif
