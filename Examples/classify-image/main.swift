// Placeholder replaced once the runtime API lands.
print("classify-image")
