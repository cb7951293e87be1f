"""App config: validates the sizing settings at start-up so a bad knob fails loudly."""
from django.apps import AppConfig


class SizingAppConfig(AppConfig):
    name = "sizing_app"
    verbose_name = "Adaptive sizing"

    def ready(self):
        from . import conf, signals  # noqa: F401  (signals connect on import)

        conf.sizing_settings()
