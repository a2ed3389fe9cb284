from django.contrib import admin
from django.urls import path
from visits import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.register, name="register"),
    path("visits/<int:pk>/", views.visit, name="visit"),
]
