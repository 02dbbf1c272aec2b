"""Grader for chapter 01 -- sockets and addresses.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.
"""
import re
import socket
import struct

from grader import GradeFailure, expect, points, swapped16


def port_hint(printed, actual):
    if printed == swapped16(actual) and printed != actual:
        return (f"{printed} is {actual} with its two bytes swapped: sin_port is in network "
                "byte order, so print ntohs(addr.sin_port)")
    return "print the port from getsockname(), converted with ntohs()"


def start_server(lab, *args):
    """Start the server and wait for its `listening on ADDRESS:PORT` line."""
    server = lab.start("server", *args)
    m = server.expect_line(r"listening on (\S+):(\d+)",
                           expected="server prints `listening on ADDRESS:PORT` once it listens",
                           hint="print the line after listen() succeeds (stdout is line-buffered for you)")
    return server, m.group(1), int(m.group(2))


# -- addr ---------------------------------------------------------------------

def run_addr(lab, *args):
    prog = lab.start("addr", *args)
    hint = (f"{args[0]} is a valid IPv6 address: when inet_pton(AF_INET, ...) returns 0, try "
            "inet_pton(AF_INET6, ...) into a struct sockaddr_in6" if ":" in args[0] else
            f"{args[0]} is a valid address: inet_pton returns 1 for it (test == 1, not < 0)")
    prog.expect_exit(0, expected="addr prints four lines and exits 0", hint=hint)
    return prog.stdout_text().splitlines()


def addr_hint(lines, wanted, default):
    """The hint for the first line that differs: each line has its own typical mistake."""
    for got, want in zip(lines, wanted):
        if got == want:
            continue
        if want.startswith("address"):
            return ("inet_ntop takes a pointer to the address itself (&addr.sin_addr or "
                    "&addr.sin6_addr), not to the whole sockaddr")
        if want.startswith("port"):
            m = re.fullmatch(r"port (\d+) bytes (\S+ \S+)", got)
            value, wbytes = int(want.split()[1]), want.split(" bytes ")[1]
            if m and m.group(2) == wbytes and int(m.group(1)) == swapped16(value):
                return (f"the bytes are right, but {m.group(1)} is {value} with its two bytes swapped: "
                        "print ntohs(sin_port)")
            return default
        if want.startswith("size"):
            return "print sizeof the structure you filled: sockaddr_in is 16 bytes, sockaddr_in6 28"
        return default
    return default


def expect_addr_output(lines, wanted, hint):
    expect(lines == wanted,
           expected="addr prints exactly:\n" + "\n".join(wanted),
           happened="it printed:\n" + ("\n".join(lines) or "(nothing)"),
           hint=addr_hint(lines, wanted, hint))


@points(2)
def test_addr_fills_an_ipv4_address(lab):
    """addr stores an IPv4 address and the port in network byte order"""
    lines = run_addr(lab, "127.0.0.1", "12345")
    expect_addr_output(lines, ["family AF_INET", "address 127.0.0.1", "port 12345 bytes 30 39", "size 16"],
                       hint="12345 is 0x3039: on the wire (and in sin_port) the high byte 0x30 comes first, "
                            "which is what htons() arranges")


@points(1)
def test_addr_prints_ipv6_in_canonical_form(lab):
    """addr accepts IPv6 and prints the canonical text form"""
    lines = run_addr(lab, "2001:db8:0:0:0:0:0:1", "443")
    expect_addr_output(lines, ["family AF_INET6", "address 2001:db8::1", "port 443 bytes 01 bb", "size 28"],
                       hint="try AF_INET first and AF_INET6 if inet_pton returns 0; print the address "
                            "with inet_ntop so it comes out canonical; sizeof(struct sockaddr_in6) is 28")


@points(1)
def test_addr_rejects_an_invalid_address(lab):
    """addr reports an invalid address and exits 1"""
    prog = lab.start("addr", "300.1.1.1", "80")
    prog.expect_fatal(r"(?i)invalid address", expected="a message on stderr: invalid address '300.1.1.1'",
                      hint="fatal(0, \"invalid address '%s'\", text) prints it and exits 1",
                      exit_expected="addr exits 1 for 300.1.1.1 (300 does not fit in a byte)",
                      exit_hint="inet_pton returns 1 on success, 0 for text that is not an address, "
                                "-1 for a bad family: check for == 1")
    expect("address " not in prog.stdout_text(),
           expected="nothing printed as if the address were valid",
           happened=f"stdout was: {prog.stdout_text()}")


# -- server -------------------------------------------------------------------

@points(2)
def test_server_listens_on_the_wildcard_address(lab):
    """server listens on 0.0.0.0 and the port it was given"""
    port = lab.port()
    server, address, printed = start_server(lab, port)
    listening = lab.listening(server, local_port=port)
    expect(listening, expected=f"`ss -ltn` shows a socket listening on port {port}",
           happened=f"the server printed port {printed}, and nothing listens on {port}",
           hint="use the port from argv[1], converted with htons() into sin_port",
           sockets=lab.sockets_text)
    expect(listening[0].local_host == "0.0.0.0",
           expected=f"the listening socket is bound to the wildcard address 0.0.0.0:{port}",
           happened=f"it is bound to {listening[0].local}",
           hint="with no ADDRESS argument, bind INADDR_ANY (0.0.0.0): every local address")
    expect((address, printed) == ("0.0.0.0", port),
           expected=f"server prints `listening on 0.0.0.0:{port}`",
           happened=f"it printed `listening on {address}:{printed}`", hint=port_hint(printed, port))
    lab.connect(port)


@points(1)
def test_server_binds_only_the_address_it_is_given(lab):
    """server bound to 127.0.0.2 is not reachable through 127.0.0.1"""
    port = lab.port()
    server, _, _ = start_server(lab, port, "127.0.0.2")
    listening = lab.listening(server, local_port=port)
    expect(listening and listening[0].local_host == "127.0.0.2",
           expected=f"a socket listening on 127.0.0.2:{port} only",
           happened=f"ss shows: {listening[0].local if listening else 'nothing listening on that port'}",
           hint="inet_pton the ADDRESS argument into sin_addr before bind()",
           sockets=lab.sockets_text)
    lab.connect(port, host="127.0.0.2")
    try:
        lab.connect(port, host="127.0.0.1", timeout=1)
    except GradeFailure:
        return  # refused, as it should be
    raise GradeFailure(expected="a connection to 127.0.0.1 is refused",
                       happened="it was accepted: the server listens on more than 127.0.0.2")


@points(2)
def test_server_reports_the_port_the_kernel_chose(lab):
    """server given port 0 prints the port the kernel assigned"""
    server, _, printed = start_server(lab, 0)
    listening = lab.listening(server, pid=server.pid)
    expect(len(listening) == 1, expected="one listening socket", happened=f"{len(listening)} of them",
           sockets=lab.sockets_text)
    actual = listening[0].local_port
    expect(actual != 0 and printed == actual,
           expected=f"server prints the port it really listens on ({actual}, as `ss -ltn` shows)",
           happened=f"it printed {printed}", hint=port_hint(printed, actual))
    lab.connect(actual)


@points(2)
def test_server_greets_each_client_with_its_address(lab):
    """server greets three clients in turn with their own address and port"""
    port = lab.port()
    server, _, _ = start_server(lab, port)
    for _ in range(3):
        peer = lab.connect(port)
        me = peer.local_port()
        line = peer.recv_line(what=f"a greeting line `hello 127.0.0.1:{me}`",
                              hint="write the greeting to the accepted socket, then close it")
        m = re.fullmatch(r"hello (\S+):(\d+)", line)
        expect(m is not None and m.group(1) == "127.0.0.1" and int(m.group(2)) == me,
               expected=f"the greeting `hello 127.0.0.1:{me}` (the grader's address and port)",
               happened=f"it sent `{line}`",
               hint=port_hint(int(m.group(2)), me) if m and m.group(2).isdigit()
               else "accept() fills in the client's address; inet_ntop + ntohs turn it into text")
        expect(peer.wait_close() == "eof", expected="the server closes the connection after the greeting",
               happened="the connection stayed open", hint="close() the accepted socket when done")
        server.expect_line(rf"connection from 127\.0\.0\.1:{me}",
                           expected=f"server prints `connection from 127.0.0.1:{me}`")
    server.expect_running("server keeps listening after serving clients",
                          hint="accept() in a loop; only the accepted socket is closed per client")


@points(1)
def test_server_reports_an_invalid_address(lab):
    """server exits 1 with a message for an invalid address"""
    server = lab.start("server", lab.port(), "10.0.0.256")
    server.expect_fatal(r"(?i)invalid address", expected="stderr says: invalid address '10.0.0.256'",
                        exit_hint="check inet_pton's return value: 1 means success")


@points(1)
def test_server_reports_a_port_in_use(lab):
    """server reports `bind: Address already in use (98)` when the port is taken"""
    other = lab.listen("0.0.0.0")
    server = lab.start("server", other.port)
    server.expect_fatal(r"bind.*Address already in use \(98\)",
                        expected="stderr says: bind: Address already in use (98)",
                        hint="name the call that failed and include strerror(errno) and the number: fatal() does",
                        exit_expected="server exits 1 because the port is already taken",
                        exit_hint="check bind()'s return value and report with fatal(errno, \"bind\")")


# -- client -------------------------------------------------------------------

@points(2)
def test_client_introduces_itself_in_network_byte_order(lab):
    """client sends its own address and port as 6 bytes in network byte order"""
    listener = lab.listen()
    client = lab.start("client", "127.0.0.1", listener.port)
    peer = listener.accept(hint="the client connects to HOST PORT from its arguments", program=client)
    intro = peer.recv_exactly(6, what="6 bytes: 4 of IPv4 address, 2 of port")
    ip, port = socket.inet_ntoa(intro[:4]), struct.unpack("!H", intro[4:])[0]
    real_ip, real_port = peer.address
    expect(ip == real_ip, expected=f"address bytes {socket.inet_aton(real_ip).hex(' ')} ({real_ip})",
           happened=f"got {intro[:4].hex(' ')} ({ip})",
           hint="send sin_addr.s_addr from getsockname() as it is: it is already in network order")
    expect(port == real_port, expected=f"port bytes {struct.pack('!H', real_port).hex(' ')} ({real_port})",
           happened=f"got {intro[4:].hex(' ')} ({port})",
           hint=(f"{port} is {real_port} with its two bytes swapped: sin_port from getsockname() is "
                 "already in network byte order -- send its two bytes as they are, no htons/ntohs")
           if port == swapped16(real_port)
           else "use getsockname() after connect() to learn the port the kernel chose")
    peer.send("hi\n")
    peer.close()
    client.expect_exit(0)


@points(1)
def test_client_prints_everything_until_the_server_closes(lab):
    """client prints all the server sends, however it is split, then exits 0"""
    listener = lab.listen()
    client = lab.start("client", "127.0.0.1", listener.port)
    peer = listener.accept(program=client)
    peer.recv_exactly(6)
    try:
        peer.send("first line\nsecond ", pieces=3, delay=0.01)
        peer.send("line\n")
    except GradeFailure:
        client.wait_exit(0.5)
        raise GradeFailure(
            expected="the client prints everything the server sends, until the server closes",
            happened=f"it closed the connection while the grader was still sending; it printed "
                     f"{client.stdout_text()!r} and {client.status()}",
            hint="one read() may return only part of what was sent (here the grader sent 3 bytes "
                 "at a time): print what you got and read again, until read() returns 0 (EOF)",
            wire=peer.wire.render()) from None
    peer.close()
    client.expect_line("first line", hint="keep reading until read() returns 0 (EOF)")
    client.expect_line("second line", hint="one read() may return part of a line: print what you get and read again")
    client.expect_exit(0, hint="read() returns 0 when the server closes: stop and exit 0")


@points(1)
def test_client_rejects_an_invalid_address(lab):
    """client exits 1 with a message for an invalid host"""
    client = lab.start("client", "1.2.3", lab.port())
    client.expect_fatal(r"(?i)invalid address", expected="stderr says: invalid address '1.2.3'",
                        exit_hint="check inet_pton's return value before connecting")
