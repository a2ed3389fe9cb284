from django import forms
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render

from conveyor import chain
from conveyor.contrib.django import get_app

from .models import Visit
from .tasks import assign_access, enroll_face


class GuestForm(forms.Form):
    guest = forms.CharField(max_length=100)


def register(request):
    form = GuestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            visit = Visit.objects.create(guest=form.cleaned_data["guest"])
            # after commit: no device call for a visit that was rolled back
            transaction.on_commit(lambda: setup_devices(visit.pk))
        return redirect("visit", pk=visit.pk)
    return render(request, "visits/register.html", {"form": form})


def setup_devices(visit_id):
    workflow = chain(enroll_face.s(visit_id), assign_access.si(visit_id)).apply_async()
    Visit.objects.filter(pk=visit_id).update(workflow_id=workflow.id)


def visit(request, pk):
    visit = get_object_or_404(Visit, pk=pk)
    steps = []
    if visit.workflow_id:
        records = get_app().workflow(visit.workflow_id).records()
        for job_id, record in records.items():
            steps.append({
                "id": job_id,
                "task": record.task.rsplit(".", 1)[-1] if record else "(not started)",
                "state": record.state.value if record else "WAITING",
                "attempt": record.attempt if record else 0,
                # every failed attempt's error, from the job's history
                "errors": [a["error"]["message"] for a in record.attempts if a.get("error")]
                if record else [],
            })  # fmt: skip
    return render(request, "visits/visit.html", {"visit": visit, "steps": steps})
