"""The project's vision library: face detection, landmarks, features, identity, segmentation, topology,
and the pinned model registry with its providers and provisioning. It sits below the engine, the quality
monitors and the avatar library, so all three read faces the same way and none imports another for it."""
