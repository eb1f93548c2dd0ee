from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from gateway.clients import service
from gateway.clients.models import ClientCreate, ClientRead, ClientSecret
from shared.auth.dependencies import needs, require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(prefix="/clients", tags=["clients"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AUDITOR))]


def _read(client) -> ClientRead:  # noqa: ANN001
    return ClientRead.model_validate(client, from_attributes=True)


def _with_secret(client, secret: str) -> ClientSecret:  # noqa: ANN001
    return ClientSecret(**_read(client).model_dump(), client_secret=secret)


@router.post("", status_code=201, response_model=ClientSecret, responses=problem_responses(409),
             summary="Register a partner system as an OAuth client (admin); its secret is shown this once",
             description="Safe to retry without an Idempotency-Key: the admin names the client, so a retry answers "
             "409. A lost first answer is no loss: rotate the secret (the secret is never stored in clear).")
def create_client(request: Request, command: ClientCreate, principal: Admin) -> ClientSecret:
    with request.app.state.database.session() as session:
        client, secret = service.create_client(session, command, created_by=principal.sub)
        session.commit()
        return _with_secret(client, secret)


@router.get("", response_model=Page[ClientRead], summary="OAuth clients, by client id (admin, auditor)",
            openapi_extra=needs("users:admin", "audit:read"))
def list_clients(request: Request, _: Reader, paging: paged(50, 200) = None) -> Page[ClientRead]:
    with request.app.state.database.session() as session:
        return service.list_clients(session, paging, lambda clients: [_read(c) for c in clients])


@router.get("/{client_id}", response_model=ClientRead, responses=problem_responses(404),
            summary="One OAuth client (admin, auditor)", openapi_extra=needs("users:admin", "audit:read"))
def get_client(request: Request, client_id: str, _: Reader) -> ClientRead:
    with request.app.state.database.session() as session:
        return _read(service.get_client(session, client_id))


async def _revoking(request: Request, command):  # noqa: ANN001, ANN202
    """Run a change that may revoke the client's tokens; this gateway applies it at once, services within a poll."""
    state = request.app.state

    def run():  # noqa: ANN202
        with state.database.session() as session:
            result = command(session, state.kernel.token_max_lifetime_seconds)
            session.commit()
            return result

    result = await run_in_threadpool(run)
    state.verifier.revocations_changed()
    return result


@router.post("/{client_id}/secret", response_model=ClientSecret, responses=problem_responses(404),
             summary="Rotate a client's secret (admin): the new one is shown this once, the old one and every "
             "token it got stop working")
async def rotate_secret(request: Request, client_id: str, principal: Admin) -> ClientSecret:
    def command(session, lifetime):  # noqa: ANN001, ANN202
        client, secret = service.rotate_client_secret(session, client_id, actor=principal.sub,
                                                      token_lifetime_seconds=lifetime)
        return _with_secret(client, secret)

    return await _revoking(request, command)


@router.post("/{client_id}/disable", response_model=ClientRead, responses=problem_responses(404),
             summary="Disable a client (admin): no new token, and every token it holds stops working")
async def disable_client(request: Request, client_id: str, principal: Admin) -> ClientRead:
    return await _revoking(request, lambda session, lifetime: _read(service.disable_client(
        session, client_id, actor=principal.sub, token_lifetime_seconds=lifetime)))


@router.post("/{client_id}/enable", response_model=ClientRead, responses=problem_responses(404),
             summary="Enable a disabled client again (admin)")
async def enable_client(request: Request, client_id: str, principal: Admin) -> ClientRead:
    return await _revoking(request, lambda session, _: _read(service.enable_client(
        session, client_id, actor=principal.sub)))
