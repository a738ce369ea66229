import CVulkan

extension VK {
    /// vkGetCalibratedTimestamps{KHR,EXT} (VK_KHR_calibrated_timestamps or VK_EXT_calibrated_timestamps), loaded
    /// with vkGetDeviceProcAddr: a device timestamp and CLOCK_MONOTONIC read together, to put GPU timestamps on
    /// the host clock (traces). Valid while `device` lives, which it keeps alive. Owns no Vulkan object.
    final class CalibratedTimestamps {
        /// The extensions, preferred first, and the suffix of their command (the KHR one has the EXT signature;
        /// our headers, Vulkan 1.3.239, only name the EXT types).
        static let extensions = [("VK_KHR_calibrated_timestamps", "KHR"), ("VK_EXT_calibrated_timestamps", "EXT")]

        let device: Device
        private let command: PFN_vkGetCalibratedTimestampsEXT

        /// Nil when the driver returns no pointer for the command.
        init?(device: Device, suffix: String) {
            guard let pointer = vkGetDeviceProcAddr(device.handle, "vkGetCalibratedTimestamps" + suffix) else { return nil }
            self.device = device
            command = unsafeBitCast(pointer, to: PFN_vkGetCalibratedTimestampsEXT.self)
        }

        /// (device ticks, CLOCK_MONOTONIC seconds, max deviation in seconds) sampled together; nil when the driver
        /// fails (e.g. a time domain it does not calibrate).
        func sample() -> (deviceTicks: UInt64, hostSeconds: Double, deviationSeconds: Double)? {
            var infos = [VK_TIME_DOMAIN_DEVICE_EXT, VK_TIME_DOMAIN_CLOCK_MONOTONIC_EXT].map { domain in
                var info = VkCalibratedTimestampInfoEXT()
                info.sType = VK_STRUCTURE_TYPE_CALIBRATED_TIMESTAMP_INFO_EXT
                info.timeDomain = domain
                return info
            }
            var values = [UInt64](repeating: 0, count: 2)
            var deviation: UInt64 = 0
            guard command(device.handle, 2, &infos, &values, &deviation) == VK_SUCCESS else { return nil }
            return (values[0], Double(values[1]) * 1e-9, Double(deviation) * 1e-9)
        }
    }
}
