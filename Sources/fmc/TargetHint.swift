import Foundation

/// Which `--target` cost model fits the machine fmc runs on, guessed from files only (fmc links no Vulkan):
/// the NVIDIA driver's `/proc/driver/nvidia/gpus/*/information` names an H100 or H200; with neither an NVIDIA
/// driver nor a `/dev/dri` render node, the only Vulkan device can be Mesa's lavapipe (CPU). fmc suggests and
/// never switches: a bundle is usually compiled for another machine than the one compiling it.
struct LocalTarget {
    /// The cost model's name, when the guess is clear.
    var target: String?
    /// What was found, for the message.
    var evidence: String

    static func detect() -> LocalTarget {
        let fm = FileManager.default
        let gpus = "/proc/driver/nvidia/gpus"
        if let ids = try? fm.contentsOfDirectory(atPath: gpus), !ids.isEmpty {
            let models = ids.sorted().compactMap { id -> String? in
                guard let text = try? String(contentsOfFile: "\(gpus)/\(id)/information", encoding: .utf8) else { return nil }
                return text.split(separator: "\n").first { $0.hasPrefix("Model:") }
                    .map { $0.dropFirst("Model:".count).trimmingCharacters(in: .whitespaces) }
            }
            let name = models.first ?? "an NVIDIA GPU"
            let target = name.contains("H200") ? "h200" : name.contains("H100") ? "h100" : nil
            return LocalTarget(target: target, evidence: "this machine has \(name)")
        }
        let renderNodes = ((try? fm.contentsOfDirectory(atPath: "/dev/dri")) ?? []).filter { $0.hasPrefix("renderD") }
        if renderNodes.isEmpty {
            return LocalTarget(target: "lavapipe", evidence: "this machine has no GPU (no NVIDIA driver, no /dev/dri "
                               + "render node), so its Vulkan device is Mesa's lavapipe")
        }
        return LocalTarget(target: nil, evidence: "this machine has a GPU at /dev/dri/\(renderNodes.sorted()[0])")
    }

    /// A line for `fmc compile` when `--target` was not given, or nil when the default already fits.
    static func hint(defaultTarget: String, all: [String]) -> String? {
        let local = detect()
        if local.target == defaultTarget { return nil }
        let advice = local.target.map { "--target \($0) plans for it" }
            ?? "pick the closest of \(all.joined(separator: ", ")), or plan with a measured --profile (fmrun --profile-out)"
        return "note: planned for --target \(defaultTarget) (the default); \(local.evidence): \(advice) "
            + "(fmrun --list-devices shows the Vulkan devices)"
    }
}
