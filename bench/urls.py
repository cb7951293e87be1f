"""The product's routes plus /bench/plain/, the baseline the API's throughput is compared with."""
from django.http import JsonResponse
from django.urls import path

from project.urls import urlpatterns as product_urlpatterns

CONSTANT = {"symbol": "BTCUSDC", "size_factor": 1.0, "score": 0.0}


def plain(request):
    return JsonResponse(CONSTANT)


urlpatterns = [path("bench/plain/", plain), *product_urlpatterns]
