"""`python -m gpubk`: prints the device in use, then runs the Keras-backend walkthrough."""
from . import devices
from .examples import walkthrough


def main() -> None:
    dev = devices.default_device()
    print(f"gpubk: device {dev.name} ({devices.default_device_reason()})")
    walkthrough.main()


if __name__ == "__main__":
    main()
