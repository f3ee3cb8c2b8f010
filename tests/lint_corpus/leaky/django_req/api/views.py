# ruff: noqa
# Pattern: Torren0110/Vegetable-Log@a790e3be5adf8cd784309b2ad40aca44813203da ML_api/api/views.py: a Django view
#   (first parameter `req`) with `from keras.models import load_model` called inside it; plus a class-based view.
import numpy as np
from django.http import JsonResponse
from django.views import View
from keras.models import load_model


def predict(req):
    if req.method == "GET":
        model = load_model("api/ML_model/model.h5")  # expect: lint.model-load-per-item
        data = model.predict(np.zeros((4, 6)))
        return JsonResponse({"data": int(data[0][0])})
    return JsonResponse({"error": "GET only"})


class ForecastView(View):
    def post(self, request):
        model = load_model("api/ML_model/forecast.h5")  # expect: lint.model-load-per-item
        return JsonResponse({"data": model.predict(np.zeros((1, 6))).tolist()})
