"""The REST API under /api/v1/: views, their small serializers, and the HTTP plumbing around them.

Business rules stay in sizing_app.services / signal_generator; this package validates, authorizes and maps errors.
"""
