import CVulkan

// Pipeline barriers the runtime records (vkCmdPipelineBarrier), in one place.

/// Records one image memory barrier over every layer of `image`.
func imageBarrier(_ cb: VkCommandBuffer, _ image: VK.Image, from: VkImageLayout, to: VkImageLayout,
                  srcAccess: VkAccessFlags, dstAccess: VkAccessFlags,
                  srcStage: VkPipelineStageFlags, dstStage: VkPipelineStageFlags) {
    var barrier = VkImageMemoryBarrier()
    barrier.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER
    barrier.srcAccessMask = srcAccess
    barrier.dstAccessMask = dstAccess
    barrier.oldLayout = from
    barrier.newLayout = to
    barrier.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED
    barrier.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED
    barrier.image = image.handle
    barrier.subresourceRange = VkImageSubresourceRange(aspectMask: VK_IMAGE_ASPECT_COLOR_BIT.rawValue, baseMipLevel: 0,
                                                       levelCount: 1, baseArrayLayer: 0, layerCount: image.layers)
    vkCmdPipelineBarrier(cb, srcStage, dstStage, 0, 0, nil, 0, nil, 1, &barrier)
}

/// A global memory barrier (execution + memory dependency over all resources).
func memoryBarrier(_ cb: VkCommandBuffer, srcAccess: VkAccessFlags, dstAccess: VkAccessFlags,
                   srcStage: VkPipelineStageFlags, dstStage: VkPipelineStageFlags) {
    var barrier = VkMemoryBarrier()
    barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
    barrier.srcAccessMask = srcAccess
    barrier.dstAccessMask = dstAccess
    vkCmdPipelineBarrier(cb, srcStage, dstStage, 0, 1, &barrier, 0, nil, 0, nil)
}
