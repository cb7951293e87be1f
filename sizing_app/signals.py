"""Hot-state invalidation: a change written by this process is visible to its very next read.

Other processes see it through their hot state's poll (latest.REFRESH_SECONDS).
"""
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import GlobalPolicy, Override, SizingSnapshot, Symbol
from .sizing.hot_state import hot_state


@receiver(post_save, sender=GlobalPolicy)
@receiver(post_save, sender=Override)
@receiver(post_save, sender=Symbol)
@receiver(post_save, sender=SizingSnapshot)
def _hot_state_changed(**kwargs):
    hot_state.invalidate()
