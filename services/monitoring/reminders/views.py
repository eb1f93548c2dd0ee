from typing import Annotated

from fastapi import APIRouter, Path, Request

from services.monitoring import api
from services.monitoring.reminders import service
from services.monitoring.reminders.models import ReminderRead, ReminderStatus, ScheduleChange, ScheduleRead
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["reminders"])
Grade = Annotated[str, Path(min_length=1, max_length=8, pattern=r"^([A-Z][A-Z0-9+-]*|\*)$",
                            description="A grade (e.g. `E`) or `*` for every grade.")]
ProductOrAny = Annotated[str, Path(min_length=1, max_length=32, description="A product or `*` for every product.")]


@router.get("/reminder-schedules", response_model=Page[ScheduleRead],
            summary="When repayment reminders go out, by product and grade (rows set; others use the defaults)",
            responses=problem_responses(422))
def list_schedules(request: Request, _: api.Reader, paging: paged(100) = None) -> Page[ScheduleRead]:
    with api.database(request).session() as session:
        return service.list_schedules(session, paging)


@router.put("/reminder-schedules/{product}/{grade}", response_model=ScheduleRead,
            summary="Set the days before the due date a product and grade are reminded (risk analyst, admin)",
            description="`*` stands for every product or every grade; the most specific row applies. Applies "
                        "from the next close of business; a retry sets the same.",
            responses=problem_responses(403, 422))
def set_schedule(request: Request, product: ProductOrAny, grade: Grade, command: ScheduleChange,
                 principal: api.Analyst) -> ScheduleRead:
    with api.database(request).session() as session:
        row = service.set_schedule(session, product, grade, command, by=principal.sub)
        session.commit()
        return ScheduleRead.model_validate(row)


@router.get("/reminders", response_model=Page[ReminderRead],
            summary="Repayment reminders: queued, sent (with the contact logged) or skipped with the reason",
            responses=problem_responses(422))
def list_reminders(request: Request, principal: api.Reader, loan_id: str | None = None,
                   status: ReminderStatus | None = None, paging: paged(100) = None) -> Page[ReminderRead]:
    with api.database(request).session() as session:
        return service.list_reminders(session, paging, scope=api.scope(principal), loan_id=loan_id, status=status)
