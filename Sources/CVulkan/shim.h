#ifndef FLASHMEM_CVULKAN_SHIM_H
#define FLASHMEM_CVULKAN_SHIM_H
#include <vulkan/vulkan.h>

// VK_MAKE_API_VERSION and friends are function-like macros, which Swift does not import.
static inline uint32_t fm_vk_make_api_version(uint32_t variant, uint32_t major, uint32_t minor, uint32_t patch) {
    return VK_MAKE_API_VERSION(variant, major, minor, patch);
}
static inline uint32_t fm_vk_api_version_major(uint32_t version) { return VK_API_VERSION_MAJOR(version); }
static inline uint32_t fm_vk_api_version_minor(uint32_t version) { return VK_API_VERSION_MINOR(version); }
#endif
