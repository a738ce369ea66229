/* imgsize: the device memory a weight image takes, as the runtime creates it (2D array, optimal tiling,
 * storage + transfer destination; Runtime/FlashMemRuntime/Session/WeightMemory.swift), against its raw bytes.
 * It checks the padding model the planner sizes weight slots with (ImageLayout.paddedRows).
 *
 *   cc -O2 -o imgsize Benchmarks/imgsize/imgsize.c -lvulkan
 *   ./imgsize [--device N] rgba16f:1024x37x1 rgba16f:1024x8x5 rgba32f:4096x1000x3 ...
 *
 * Prints one line per extent: format WxHxL raw BYTES size BYTES align BYTES ratio size/raw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#define CHECK(call)                                                                   \
    do {                                                                              \
        VkResult r_ = (call);                                                         \
        if (r_ != VK_SUCCESS) { fprintf(stderr, "imgsize: %s failed: %d\n", #call, r_); return 2; } \
    } while (0)

int main(int argc, char **argv) {
    unsigned want = 0;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--device")) { want = (unsigned)atoi(argv[2]); first = 3; }
    if (first >= argc) {
        fprintf(stderr, "usage: imgsize [--device N] rgba16f|rgba32f:WxHxL ...\n");
        return 1;
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    CHECK(vkCreateInstance(&ici, NULL, &instance));
    uint32_t count = 0;
    CHECK(vkEnumeratePhysicalDevices(instance, &count, NULL));
    if (want >= count) { fprintf(stderr, "imgsize: no device %u (%u found)\n", want, count); return 1; }
    VkPhysicalDevice *all = calloc(count, sizeof *all);
    CHECK(vkEnumeratePhysicalDevices(instance, &count, all));
    VkPhysicalDevice physical = all[want];
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(physical, &props);
    printf("device %s\n", props.deviceName);
    float priority = 1;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = 0,
                                   .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci};
    VkDevice device;
    CHECK(vkCreateDevice(physical, &dci, NULL, &device));
    for (int i = first; i < argc; i++) {
        char name[16];
        unsigned w, h, l;
        if (sscanf(argv[i], "%15[a-z0-9]:%ux%ux%u", name, &w, &h, &l) != 4) {
            fprintf(stderr, "imgsize: '%s' is not FORMAT:WxHxL\n", argv[i]);
            return 1;
        }
        VkFormat format;
        unsigned texel;
        if (!strcmp(name, "rgba16f")) { format = VK_FORMAT_R16G16B16A16_SFLOAT; texel = 8; }
        else if (!strcmp(name, "rgba32f")) { format = VK_FORMAT_R32G32B32A32_SFLOAT; texel = 16; }
        else { fprintf(stderr, "imgsize: format '%s' is not rgba16f or rgba32f\n", name); return 1; }
        VkImageCreateInfo info = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .imageType = VK_IMAGE_TYPE_2D,
                                  .format = format, .extent = {w, h, 1}, .mipLevels = 1, .arrayLayers = l,
                                  .samples = VK_SAMPLE_COUNT_1_BIT, .tiling = VK_IMAGE_TILING_OPTIMAL,
                                  .usage = VK_IMAGE_USAGE_STORAGE_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT,
                                  .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
                                  .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
        VkImage image;
        CHECK(vkCreateImage(device, &info, NULL, &image));
        VkMemoryRequirements req;
        vkGetImageMemoryRequirements(device, image, &req);
        unsigned long long raw = (unsigned long long)w * h * l * texel;
        printf("%s %ux%ux%u raw %llu size %llu align %llu ratio %.3f\n", name, w, h, l, raw,
               (unsigned long long)req.size, (unsigned long long)req.alignment, (double)req.size / (double)raw);
        vkDestroyImage(device, image, NULL);
    }
    vkDestroyDevice(device, NULL);
    vkDestroyInstance(instance, NULL);
    free(all);
    return 0;
}
