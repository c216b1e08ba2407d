"""The connection under the services' standalone Redis client (redis_client.py): redis-py's, cheaper
per command.

Commands are packed with hiredis, as redis-py's sync client already does. redis-py's asyncio
connection packs every command in Python, argument by argument: about 38 us for a signal's XADD
(21 arguments) against 3.4 us with hiredis, the same bytes. The recommender's close timer sends
up to 500 of them at one bar end, the fetcher a pipeline of ticks per batch.

The socket timeout (a hung server) bounds every command as before, without a timer of its own
per command. redis-py arms one per write (`asyncio.wait_for`: on Python 3.11 a new Task, run on
the loop's next turn) and one per read (`asyncio.timeout`): together about 8% of the instructions
of the api's latest-quote request. Here a write is bounded only when it can wait, and reads share
one timer per connection that, when it fires, fails the read in flight if it is past its deadline
and is otherwise set again for that deadline. Reads with a timeout of their own (pub/sub
polling) and connections without a socket timeout are redis-py's, unchanged. redis-py's relaxing
of the read timeout during server maintenance (RESP3 maintenance notifications) does not reach
these reads; the services use neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class HiredisPackingConnection(aioredis.Connection):
    """redis-py's asyncio TCP connection, with hiredis packing and one read timer per connection.

    Only `redis://` URLs get it: `rediss://` and `unix://` keep their own connection classes
    (the URL's choice wins in `from_url`).
    """

    _serializer = HiredisRespSerializer()
    # When the read in flight times out (None: no read in flight), and the timer that checks it.
    _read_deadline: float | None = None
    _read_timer: asyncio.TimerHandle | None = None

    def pack_command(self, *args: Any) -> list[bytes]:
        # redis-py's serializer first rebuilds the argument tuple in Python, converting any
        # bytearray or memoryview, and splits a command name given with a space ("SCRIPT LOAD"):
        # ~40% of packing a 500-signal script call. Plain arguments go to hiredis directly.
        if isinstance(args[0], str) and " " not in args[0]:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bytearray or memoryview: the serializer converts those
                pass
        return self._serializer.pack(*args)

    async def send_packed_command(
        self, command: str | bytes | Iterable[bytes], check_health: bool = True
    ) -> None:
        """redis-py's send, with the socket timeout applied only to a write that can wait.

        The transport sends what it can at once and buffers the rest, and `drain()` waits only
        while that buffer is over its high-water mark (a server that stopped reading). So the
        bound applies whenever anything is left in the buffer, and otherwise there is nothing
        to bound.
        """
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        writer = self._writer
        if writer is None:  # disconnected by the health check's failure
            raise RedisConnectionError("Connection closed before the command was sent.")
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            writer.writelines(command)
            if self.socket_timeout and writer.transport.get_write_buffer_size():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            err_no, errmsg = ("UNKNOWN", e.args[0]) if len(e.args) == 1 else (e.args[0], e.args[1])
            raise RedisConnectionError(f"Error {err_no} while writing to socket. {errmsg}.") from e
        except BaseException:
            # As redis-py: a send cut short leaves the connection unusable.
            await self.disconnect(nowait=True)
            raise

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        """redis-py's read, bounded by the socket timeout through the connection's read timer."""
        if timeout is not None or not self.socket_timeout or not disconnect_on_error:
            return await super().read_response(
                disable_decoding, timeout, disconnect_on_error=disconnect_on_error, push_request=push_request
            )
        loop = asyncio.get_running_loop()
        self._read_deadline = deadline = loop.time() + self.socket_timeout
        if self._read_timer is None:
            self._read_timer = loop.call_at(deadline, self._check_read)
        try:
            response = await self._read_response_from_parser(
                disable_decoding=disable_decoding, push_request=push_request
            )
        except TimeoutError:  # from _check_read
            await self.disconnect(nowait=True)
            raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while reading from {self._host_error()} : {e.args}") from e
        except BaseException:
            # As redis-py: a read cut short leaves the rest of its reply on the socket.
            await self.disconnect(nowait=True)
            raise
        finally:
            self._read_deadline = None
        reader = self._reader
        if reader is not None and reader.exception() is not None:
            # The reply came in just as its deadline passed: the stream is failed for the next
            # command, so start that one on a new connection.
            await self.disconnect(nowait=True)
        if self.health_check_interval:
            self.next_health_check = loop.time() + self.health_check_interval
        if isinstance(response, ResponseError):
            raise response from None
        return response

    def _check_read(self) -> None:
        """The read timer: fail the read in flight past its deadline, else wait for that deadline."""
        self._read_timer = None
        deadline = self._read_deadline
        if deadline is None:  # the next read sets the timer again
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:
            self._read_timer = loop.call_at(deadline, self._check_read)
        elif self._reader is not None:
            self._reader.set_exception(TimeoutError())
