"""Cache invalidation: a policy change made in this process takes effect on the next call.

Other processes see it within the cache refresh period (latest.REFRESH_SECONDS).
"""
from django.db.models.signals import post_save
from django.dispatch import receiver

from .latest import policy_cache
from .models import GlobalPolicy, Override, Symbol


@receiver(post_save, sender=GlobalPolicy)
@receiver(post_save, sender=Override)
@receiver(post_save, sender=Symbol)
def _policy_changed(**kwargs):
    policy_cache.invalidate()
