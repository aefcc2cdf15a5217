"""Op families, each op written once against the device's array module, forward and backward
side by side: math (elementwise), reduce, linalg, shape, nn, losses, creation, state, query."""
