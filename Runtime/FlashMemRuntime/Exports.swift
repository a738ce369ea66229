// Apps embed the runtime with `import FlashMemRuntime` alone: the bundle model (`LoadedBundle`,
// `FMBundle`, `ElementType`, …) comes with it.
@_exported import FMBFormat
