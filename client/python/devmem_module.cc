// _devmem: the compiled half of the `devmem` Python package, a thin pybind11
// layer over the public API of libdevmem_client (client/client.h,
// client/rx_socket.h, client/tx_sender.h, client/dmabuf/dmabuf.h) and the
// demo pattern (client/demo/pattern.h). The Pythonic API (argument checks,
// dataclasses, context managers, exception classes) is in devmem/*.py.
//
// absl::Status becomes a Python exception here and only here: every failed
// call throws StatusError, which the registered translator turns into the
// devmem.Error subclass for its code (devmem/_errors.py).
//
// GIL: every call that may block (RPCs, receive, completions) runs with the
// GIL released. Receive waits in slices of at most kSliceMs and checks for
// signals (PyErr_CheckSignals, GIL held) between slices, so Ctrl-C raises
// KeyboardInterrupt promptly.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/demo/pattern.h"
#include "client/dmabuf/dmabuf.h"
#include "client/rx_socket.h"
#include "client/tx_sender.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"

namespace py = pybind11;

namespace devmem::python {
namespace {

constexpr int64_t kSliceMs = 100;

struct StatusError {
  absl::Status status;
};

void Check(const absl::Status& s) {
  if (!s.ok()) throw StatusError{s};
}
template <typename T>
T Take(absl::StatusOr<T> s) {
  if (!s.ok()) throw StatusError{s.status()};
  return std::move(*s);
}

absl::Duration Timeout(std::optional<double> seconds) {
  if (!seconds) return absl::InfiniteDuration();
  return absl::Seconds(*seconds);
}

// A protobuf message as a dict (enums by name, repeated fields as lists).
py::object FieldValue(const google::protobuf::Message& m,
                      const google::protobuf::FieldDescriptor* f, int index);

py::dict ToDict(const google::protobuf::Message& m) {
  py::dict d;
  const auto* desc = m.GetDescriptor();
  const auto* refl = m.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (f->is_repeated()) {
      py::list l;
      for (int j = 0; j < refl->FieldSize(m, f); ++j) {
        l.append(FieldValue(m, f, j));
      }
      d[py::str(f->name())] = std::move(l);
    } else {
      d[py::str(f->name())] = FieldValue(m, f, -1);
    }
  }
  return d;
}

py::object FieldValue(const google::protobuf::Message& m,
                      const google::protobuf::FieldDescriptor* f, int i) {
  using FD = google::protobuf::FieldDescriptor;
  const auto* r = m.GetReflection();
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      return py::int_(rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f));
    case FD::CPPTYPE_INT64:
      return py::int_(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
    case FD::CPPTYPE_UINT32:
      return py::int_(rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f));
    case FD::CPPTYPE_UINT64:
      return py::int_(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
    case FD::CPPTYPE_DOUBLE:
      return py::float_(rep ? r->GetRepeatedDouble(m, f, i)
                            : r->GetDouble(m, f));
    case FD::CPPTYPE_FLOAT:
      return py::float_(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
    case FD::CPPTYPE_BOOL:
      return py::bool_(rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f));
    case FD::CPPTYPE_ENUM:
      return py::str(
          (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name());
    case FD::CPPTYPE_STRING:
      return py::str(rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f));
    case FD::CPPTYPE_MESSAGE:
      return ToDict(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
  }
  return py::none();
}

// A buffer the job binds: the Dmabuf and its CPU mapping. Exposes the
// mapping through the buffer protocol so memoryviews keep it alive.
class PyBuffer {
 public:
  PyBuffer(Dmabuf buf, DmabufMapping map)
      : buf_(std::move(buf)), map_(std::move(map)) {}
  int fd() const { return buf_.fd().get(); }
  uint64_t size() const { return buf_.size(); }
  std::string kind() const {
    return buf_.kind() == Dmabuf::Kind::kMemfd ? "memfd" : "udmabuf";
  }
  bool host() const { return map_.mapped(); }
  const DmabufMapping& mapping() const { return map_; }

 private:
  Dmabuf buf_;
  DmabufMapping map_;
};

std::unique_ptr<PyBuffer> MakeBuffer(absl::StatusOr<Dmabuf> buf) {
  Dmabuf b = Take(std::move(buf));
  DmabufMapping m = Take(b.Map());
  return std::make_unique<PyBuffer>(std::move(b), std::move(m));
}

// One received fragment. `base` is what `view` slices: the buffer (dmabuf
// frags) or a bytes copy of the batch's linear payload (linear frags).
struct PyFrag {
  Frag frag;
  py::object base;
};

// One Receive()'s frags, kept as C++ Frags: Python objects are made only
// for the frags a caller indexes, and release(batch) needs no conversion.
struct PyBatch {
  std::vector<Frag> frags;
  py::object base;    // the buffer's memoryview (dmabuf frags)
  py::object linear;  // bytes of the linear payload, or None
  uint64_t bytes = 0;

  PyFrag At(py::ssize_t i) const {
    const auto n = static_cast<py::ssize_t>(frags.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw py::index_error("frag index out of range");
    const Frag& f = frags[i];
    return PyFrag{f, f.is_dmabuf() ? base : linear};
  }
  // Frags adjacent in the buffer merged: [(offset, size), ...] (dmabuf).
  py::list Runs() const {
    py::list out;
    uint64_t off = 0, len = 0;
    bool open = false;
    for (const Frag& f : frags) {
      if (!f.is_dmabuf()) continue;
      if (open && off + len == f.offset) {
        len += f.size;
        continue;
      }
      if (open) out.append(py::make_tuple(off, len));
      off = f.offset;
      len = f.size;
      open = true;
    }
    if (open) out.append(py::make_tuple(off, len));
    return out;
  }
};

class PyClient;

class PyBinding {
 public:
  explicit PyBinding(Binding b) : b_(std::move(b)) {}
  Binding& binding() { return b_; }
  uint32_t id() const { return b_.id(); }
  py::dict info() const { return ToDict(b_.info()); }
  bool active() const { return b_.active(); }
  void Unbind() {
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = b_.Unbind();
    }
    Check(s);
  }
  // Drops the C++ Binding (unbinding it if still active; errors logged).
  void Reset() {
    py::gil_scoped_release nogil;
    b_ = Binding();
  }

 private:
  Binding b_;
};

class PyRx {
 public:
  PyRx(RxSocket s, py::object base) : s_(std::move(s)), base_(base) {}

  // (frags, end_of_stream); frags empty and eos false: timed out.
  py::tuple Receive(std::optional<double> timeout_s) {
    const absl::Time deadline = timeout_s
                                    ? absl::Now() + absl::Seconds(*timeout_s)
                                    : absl::InfiniteFuture();
    for (;;) {
      absl::Duration slice =
          std::min(absl::Milliseconds(kSliceMs), deadline - absl::Now());
      if (slice < absl::ZeroDuration()) slice = absl::ZeroDuration();
      absl::StatusOr<RxBatch> batch;
      {
        py::gil_scoped_release nogil;
        batch = s_.Receive(slice);
      }
      Check(batch.status());
      if (!batch->empty()) return Convert(std::move(*batch));
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (absl::Now() >= deadline) {
        return py::make_tuple(PyBatch{{}, base_, py::none(), 0}, false);
      }
    }
  }

  void Return(const py::object& frags) {
    std::vector<Frag> v;
    const std::vector<Frag>* p = &v;
    if (py::isinstance<PyBatch>(frags)) {
      p = &frags.cast<const PyBatch&>().frags;
    } else {
      for (py::handle h : frags) v.push_back(h.cast<const PyFrag&>().frag);
    }
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = s_.Return(*p);
    }
    Check(s);
  }

  py::dict Stats() const {
    const RxStats st = s_.stats();
    py::dict d;
    d["bytes"] = st.bytes;
    d["frags"] = st.frags;
    d["batches"] = st.batches;
    d["tokens_outstanding"] = st.tokens_outstanding;
    d["tokens_returned"] = st.tokens_returned;
    d["return_calls"] = st.return_calls;
    d["tokens_rejected"] = st.tokens_rejected;
    d["control_grows"] = st.control_grows;
    return d;
  }

 private:
  py::tuple Convert(RxBatch batch) {
    py::object linear = py::none();
    if (!batch.linear.empty()) {
      linear = py::bytes(reinterpret_cast<const char*>(batch.linear.data()),
                         batch.linear.size());
    }
    const bool eos = batch.end_of_stream;
    return py::make_tuple(
        PyBatch{std::move(batch.frags), base_, linear, batch.bytes}, eos);
  }

  RxSocket s_;
  py::object base_;
};

class PyTx {
 public:
  explicit PyTx(TxSender s) : s_(std::move(s)) {}
  py::tuple Allocate(uint64_t bytes) {
    TxRange r = Take(s_.Allocate(bytes));
    allocated_[r.offset] = r;
    return py::make_tuple(r.offset, r.length);
  }
  void Send(uint64_t offset, uint64_t length) {
    auto it = allocated_.find(offset);
    if (it == allocated_.end() || it->second.length != length) {
      throw py::value_error(
          "send(offset, length): no range of that offset and length was "
          "allocated (call allocate(length) first)");
    }
    TxRange r = it->second;
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = s_.Send(r);
    }
    Check(s);
    allocated_.erase(it);
  }
  uint32_t Poll(std::optional<double> timeout_s) {
    absl::StatusOr<uint32_t> n;
    {
      py::gil_scoped_release nogil;
      n = s_.PollCompletions(Timeout(timeout_s));
    }
    return Take(std::move(n));
  }
  void Flush(std::optional<double> timeout_s) {
    absl::Status s;
    {
      py::gil_scoped_release nogil;
      s = s_.Flush(Timeout(timeout_s));
    }
    Check(s);
  }
  py::dict Stats() const {
    const TxStats st = s_.stats();
    py::dict d;
    d["sends"] = st.sends;
    d["bytes"] = st.bytes;
    d["completed"] = st.completed;
    d["in_flight"] = st.in_flight;
    d["transport_calls"] = st.transport_calls;
    return d;
  }

 private:
  TxSender s_;
  std::map<uint64_t, TxRange> allocated_;
};

class PyClient {
 public:
  PyClient(const std::string& run_dir, const std::string& name) {
    ClientOptions o;
    o.run_dir = run_dir;
    o.client_name = name;
    absl::StatusOr<std::unique_ptr<Client>> c;
    {
      py::gil_scoped_release nogil;
      c = Client::Connect(o);
    }
    c_ = Take(std::move(c));
  }
  Client& c() {
    if (!c_) throw StatusError{absl::FailedPreconditionError("client closed")};
    return *c_;
  }
  void Close() {
    py::gil_scoped_release nogil;
    c_.reset();
  }
  bool closed() const { return c_ == nullptr; }

  template <typename F>
  auto Call(F f) {
    Client& cl = c();
    decltype(f(cl)) r = absl::UnknownError("not run");
    {
      py::gil_scoped_release nogil;
      r = f(cl);
    }
    return r;
  }

  std::unique_ptr<PyBinding> BindRx(
      const PyBuffer& buf, const std::string& device, uint32_t num_queues,
      std::vector<uint32_t> queue_ids, const std::vector<py::tuple>& flows,
      uint32_t chunk_size, const std::string& name) {
    RxBindOptions o;
    o.device = device;
    o.num_queues = num_queues;
    o.queue_ids = std::move(queue_ids);
    o.chunk_size = chunk_size;
    o.name = name;
    for (const py::tuple& t : flows) {
      v1::Flow f;
      f.set_ipv6(t[0].cast<bool>());
      f.set_src_ip(t[1].cast<std::string>());
      f.set_dst_ip(t[2].cast<std::string>());
      f.set_src_port(t[3].cast<uint32_t>());
      f.set_dst_port(t[4].cast<uint32_t>());
      o.flows.push_back(std::move(f));
    }
    const int fd = buf.fd();
    Binding b =
        Take(Call([&](Client& cl) { return cl.BindRx(BorrowedFd(fd), o); }));
    return std::make_unique<PyBinding>(std::move(b));
  }

  std::unique_ptr<PyBinding> BindTx(const PyBuffer& buf,
                                    const std::string& device,
                                    const std::string& name) {
    const int fd = buf.fd();
    Binding b = Take(Call(
        [&](Client& cl) { return cl.BindTx(BorrowedFd(fd), device, name); }));
    return std::make_unique<PyBinding>(std::move(b));
  }

  std::unique_ptr<PyRx> OpenRx(PyBinding& b, py::object base) {
    RxSocket s = Take(Call([&](Client& cl) { return cl.OpenRx(b.binding()); }));
    return std::make_unique<PyRx>(std::move(s), base);
  }

  std::unique_ptr<PyTx> OpenTx(PyBinding& b, const std::string& peer) {
    TxSender s =
        Take(Call([&](Client& cl) { return cl.OpenTx(b.binding(), peer); }));
    return std::make_unique<PyTx>(std::move(s));
  }

 private:
  std::unique_ptr<Client> c_;
};

}  // namespace
}  // namespace devmem::python

using namespace devmem;          // NOLINT
using namespace devmem::python;  // NOLINT

PYBIND11_MODULE(_devmem, m) {
  m.doc() =
      "Compiled core of the devmem package (pybind11 over libdevmem_client). "
      "Use the `devmem` package, not this module.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      py::object err =
          py::module_::import("devmem._errors")
              .attr("from_status")(static_cast<int>(e.status.code()),
                                   std::string(e.status.message()));
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())),
                      err.ptr());
    }
  });

  m.def("default_run_dir", &Client::DefaultRunDir,
        "$DEVMEM_SOCKET's directory when set, else /run/devmemd.");
  m.def("udmabuf_available", &Dmabuf::UdmabufAvailable,
        "True when /dev/udmabuf exists.");

  py::class_<PyBuffer>(m, "Buffer", py::buffer_protocol())
      .def_static(
          "memfd",
          [](const std::string& name, uint64_t size) {
            return MakeBuffer(Dmabuf::CreateMemfd(name, size));
          },
          py::arg("name"), py::arg("size"))
      .def_static(
          "udmabuf",
          [](const std::string& name, uint64_t size) {
            return MakeBuffer(Dmabuf::CreateUdmabuf(name, size));
          },
          py::arg("name"), py::arg("size"))
      .def_property_readonly("fd", &PyBuffer::fd)
      .def_property_readonly("size", &PyBuffer::size)
      .def_property_readonly("kind", &PyBuffer::kind)
      .def_property_readonly("host", &PyBuffer::host)
      .def_buffer([](PyBuffer& b) -> py::buffer_info {
        if (!b.host()) {
          throw StatusError{absl::FailedPreconditionError(
              "the buffer is device memory: no CPU mapping")};
        }
        return py::buffer_info(b.mapping().data(), 1, "B", b.mapping().size());
      });

  py::class_<PyFrag>(m, "Frag")
      .def_property_readonly("offset",
                             [](const PyFrag& f) { return f.frag.offset; })
      .def_property_readonly("size",
                             [](const PyFrag& f) { return f.frag.size; })
      .def_property_readonly("token",
                             [](const PyFrag& f) { return f.frag.token; })
      .def_property_readonly("binding_id",
                             [](const PyFrag& f) { return f.frag.binding_id; })
      .def_property_readonly("is_dmabuf",
                             [](const PyFrag& f) { return f.frag.is_dmabuf(); })
      .def_property_readonly(
          "view",
          [](const PyFrag& f) {
            py::memoryview mv(f.base);
            return mv[py::slice(f.frag.offset, f.frag.offset + f.frag.size, 1)];
          })
      .def("__repr__", [](const PyFrag& f) {
        return "Frag(offset=" + std::to_string(f.frag.offset) +
               ", size=" + std::to_string(f.frag.size) +
               ", token=" + std::to_string(f.frag.token) +
               (f.frag.is_dmabuf() ? ")" : ", linear)");
      });

  py::class_<PyBatch>(m, "Batch",
                      "One receive's frags (a sequence of Frag, in stream "
                      "order); `bytes` is their payload total.")
      .def("__len__", [](const PyBatch& b) { return b.frags.size(); })
      .def("__getitem__", &PyBatch::At)
      .def_property_readonly("bytes", [](const PyBatch& b) { return b.bytes; })
      .def("runs", &PyBatch::Runs,
           "Frags adjacent in the buffer merged: [(offset, size), ...].")
      .def("__repr__", [](const PyBatch& b) {
        return "Batch(" + std::to_string(b.frags.size()) + " frags, " +
               std::to_string(b.bytes) + " bytes)";
      });

  py::class_<PyBinding>(m, "Binding")
      .def_property_readonly("id", &PyBinding::id)
      .def_property_readonly("active", &PyBinding::active)
      .def("info", &PyBinding::info)
      .def("unbind", &PyBinding::Unbind)
      .def("reset", &PyBinding::Reset);

  py::class_<PyRx>(m, "RxSocket")
      .def("receive", &PyRx::Receive, py::arg("timeout") = py::none())
      .def("release", &PyRx::Return, py::arg("frags"))
      .def("stats", &PyRx::Stats);

  py::class_<PyTx>(m, "TxSender")
      .def("allocate", &PyTx::Allocate, py::arg("length"))
      .def("send", &PyTx::Send, py::arg("offset"), py::arg("length"))
      .def("poll", &PyTx::Poll, py::arg("timeout") = py::none())
      .def("flush", &PyTx::Flush, py::arg("timeout") = py::none())
      .def("stats", &PyTx::Stats);

  py::class_<PyClient>(m, "Client")
      .def(py::init<const std::string&, const std::string&>(),
           py::arg("run_dir"), py::arg("name"))
      .def("close", &PyClient::Close)
      .def_property_readonly("closed", &PyClient::closed)
      .def_property_readonly("run_dir",
                             [](PyClient& c) { return c.c().run_dir(); })
      .def_property_readonly("session_id",
                             [](PyClient& c) { return c.c().session_id(); })
      .def_property_readonly("provider",
                             [](PyClient& c) { return c.c().provider(); })
      .def("devices",
           [](PyClient& c) {
             return ToDict(
                 Take(c.Call([](Client& cl) { return cl.ListDevices(); })));
           })
      .def(
          "bindings",
          [](PyClient& c, bool all) {
            return ToDict(
                Take(c.Call([&](Client& cl) { return cl.ListBindings(all); })));
          },
          py::arg("include_released") = false)
      .def("get_binding",
           [](PyClient& c, uint32_t id) {
             return ToDict(
                 Take(c.Call([&](Client& cl) { return cl.GetBinding(id); })));
           })
      .def("unbind",
           [](PyClient& c, uint32_t id) {
             Check(c.Call([&](Client& cl) { return cl.Unbind(id); }));
           })
      .def("stats",
           [](PyClient& c) {
             return ToDict(
                 Take(c.Call([](Client& cl) { return cl.GetStats(); })));
           })
      .def("bind_rx", &PyClient::BindRx)
      .def("bind_tx", &PyClient::BindTx)
      .def("open_rx", &PyClient::OpenRx)
      .def("open_tx", &PyClient::OpenTx);

  m.def(
      "verify_pattern",
      [](uint64_t stream_offset, py::buffer data) -> py::object {
        py::buffer_info info = data.request();
        const auto* p = static_cast<const std::byte*>(info.ptr);
        const size_t n = static_cast<size_t>(info.size * info.itemsize);
        std::optional<uint64_t> bad;
        {
          py::gil_scoped_release nogil;
          bad = demo::VerifyPattern(stream_offset, absl::MakeConstSpan(p, n));
        }
        if (bad) return py::int_(*bad);
        return py::none();
      },
      py::arg("stream_offset"), py::arg("data"),
      "Checks `data` against the demo stream (client/demo/pattern.h) at "
      "`stream_offset`; the stream offset of the first wrong byte, or None.");
  m.def(
      "fill_pattern",
      [](uint64_t stream_offset, py::buffer out) {
        py::buffer_info info = out.request(true);
        auto* p = static_cast<std::byte*>(info.ptr);
        demo::FillPattern(stream_offset,
                          absl::MakeSpan(p, info.size * info.itemsize));
      },
      py::arg("stream_offset"), py::arg("out"),
      "Writes the demo stream at `stream_offset` into the writable `out`.");
}
