"""API views: one per operation (a URL's methods share a class), each with its own small serializers.

Views validate input, check existence, call the services, and shape output; rules live in the services.
One module per part of the API; urls.py routes to them.
"""
