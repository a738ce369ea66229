import CVulkan

extension VK {
    /// A `VkImage` (vkCreateImage / vkDestroyImage): a 2D image with array layers, optimal tiling,
    /// one mip level, as weight images are. Shared CONCURRENT between queue families when `families`
    /// names several, so the transfer queue can fill it and the compute queue read it without
    /// ownership transfers. Keeps its bound `DeviceMemory` alive; several images may alias one allocation.
    final class Image {
        let handle: VkImage
        let device: Device
        let format: VkFormat
        let layers: UInt32
        private(set) var memory: DeviceMemory?

        init(device: Device, format: VkFormat, width: UInt32, height: UInt32, layers: UInt32,
             usage: VkImageUsageFlags, families: [UInt32], label: String) throws {
            self.device = device
            self.format = format
            self.layers = layers
            var raw: VkImage?
            let result = withSharing(families) { mode, familyCount, familyList -> VkResult in
                var info = VkImageCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO
                info.imageType = VK_IMAGE_TYPE_2D
                info.format = format
                info.extent = VkExtent3D(width: width, height: height, depth: 1)
                info.mipLevels = 1
                info.arrayLayers = layers
                info.samples = VK_SAMPLE_COUNT_1_BIT
                info.tiling = VK_IMAGE_TILING_OPTIMAL
                info.usage = usage
                info.initialLayout = VK_IMAGE_LAYOUT_UNDEFINED
                info.sharingMode = mode
                info.queueFamilyIndexCount = familyCount
                info.pQueueFamilyIndices = familyList
                return vkCreateImage(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateImage", "\(label), \(width)x\(height)x\(layers)")
            handle = raw!
        }

        deinit { vkDestroyImage(device.handle, handle, nil) }

        /// vkGetImageMemoryRequirements.
        var requirements: VkMemoryRequirements {
            var requirements = VkMemoryRequirements()
            vkGetImageMemoryRequirements(device.handle, handle, &requirements)
            return requirements
        }

        /// vkBindImageMemory.
        func bind(_ memory: DeviceMemory, offset: UInt64) throws {
            try check(vkBindImageMemory(device.handle, handle, memory.handle, offset), "vkBindImageMemory")
            self.memory = memory
        }
    }

    /// A `VkImageView` (vkCreateImageView / vkDestroyImageView) of type 2D_ARRAY over all layers of
    /// an image, the view weight kernels bind as `image2DArray`. Keeps its image alive.
    final class ImageView {
        let handle: VkImageView
        let image: Image

        init(image: Image) throws {
            self.image = image
            var info = VkImageViewCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO
            info.image = image.handle
            info.viewType = VK_IMAGE_VIEW_TYPE_2D_ARRAY
            info.format = image.format
            info.components = VkComponentMapping(r: VK_COMPONENT_SWIZZLE_IDENTITY, g: VK_COMPONENT_SWIZZLE_IDENTITY,
                                                 b: VK_COMPONENT_SWIZZLE_IDENTITY, a: VK_COMPONENT_SWIZZLE_IDENTITY)
            info.subresourceRange = VkImageSubresourceRange(
                aspectMask: VK_IMAGE_ASPECT_COLOR_BIT.rawValue, baseMipLevel: 0, levelCount: 1,
                baseArrayLayer: 0, layerCount: image.layers)
            var raw: VkImageView?
            try check(vkCreateImageView(image.device.handle, &info, nil, &raw), "vkCreateImageView")
            handle = raw!
        }

        deinit { vkDestroyImageView(image.device.handle, handle, nil) }
    }
}
