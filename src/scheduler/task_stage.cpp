#include "scheduler/task_stage.h"

#include "config/contract.h"
#include "factory/topic.h"
#include "scheduler/task_records.h"

namespace factory::scheduler {

struct TaskStage::Impl {
  std::unique_ptr<Stage> inner;
  StageInfo inner_info;
  std::unique_ptr<config::Contract> input;
  std::unique_ptr<config::Contract> output;
  std::shared_ptr<const LiveTries> live;   // null: no scheduler to ask
  std::shared_ptr<const RecordAuth> auth;  // null: nothing to check or sign (tasks test)

  // OK when there is no key or the dispatch carries the daemon's MAC; else InvalidArgument,
  // counted, with the reason for the dead letter.
  Status authenticate(const Event& event, StageContext& ctx) const;
};

namespace {

using Dispatch = DispatchRecord;

// Whether the scheduler still has this dispatch's try running (always, without a LiveTries).
bool live(const LiveTries* tries, const Dispatch& d) {
  return !tries || d.notify || tries->is_live(d.run_id, d.task_id, d.try_number);
}

// Forwards everything to the outer context but keeps the inner stage's outputs, and reports
// cancelled() once the try is superseded. *outer, *tries and *d must outlive it.
class CapturingContext final : public StageContext {
 public:
  CapturingContext(StageContext* outer, const LiveTries* tries, const Dispatch* d)
      : outer_(outer), tries_(tries), d_(d) {}
  void emit(Output output) override { outputs.push_back(std::move(output)); }
  // The task's literal params (what the DAG file says) when the dispatch carries them: a stage
  // reads what must not come from data from its config.
  const std::string& config() const override {
    return d_->config.empty() ? outer_->config() : d_->config;
  }
  std::optional<std::string> secret(std::string_view n) const override { return outer_->secret(n); }
  void log_info(std::string_view m) override { outer_->log_info(m); }
  void log_warn(std::string_view m) override { outer_->log_warn(m); }
  void count(std::string_view m, int64_t d) override { outer_->count(m, d); }
  std::chrono::steady_clock::time_point deadline() const override { return outer_->deadline(); }
  bool cancelled() const override { return outer_->cancelled() || !live(tries_, *d_); }
  const std::filesystem::path& scratch_dir() const override { return outer_->scratch_dir(); }
  const std::filesystem::path& data_dir() const override { return outer_->data_dir(); }
  Breaker& breaker(std::string_view name) override { return outer_->breaker(name); }
  std::vector<Output> outputs;

 private:
  StageContext* outer_;
  const LiveTries* tries_;
  const Dispatch* d_;
};

void emit_result(StageContext& ctx, const RecordAuth* auth, const Dispatch& d, bool success,
                 std::string_view output, std::string_view error, bool retryable) {
  ResultRecord r{.run_id = d.run_id,
                 .task_id = d.task_id,
                 .try_number = d.try_number,
                 .success = success,
                 .output = std::string(output),
                 .error = std::string(error),
                 .retryable = retryable};
  Output out{.payload = encode_result(r), .key = d.run_id, .topic = d.results_topic};
  // The scheduler applies only results carrying the daemon's MAC (record_auth.h).
  if (auth)
    out.headers.push_back(
        {std::string(RecordAuth::kHeader), auth->sign(out.topic, out.key, out.payload)});
  ctx.emit(std::move(out));
}

// The inner stage's event: the dispatch's params as payload; the approved commits as
// kApprovedCommitHeader headers from the authenticated dispatch only (a record's own headers
// of that name are dropped: they are not the scheduler's word).
Event inner_event(const Event& event, const Dispatch& d) {
  Event inner = event;
  inner.payload = d.params;
  inner.attempt = static_cast<int>(d.try_number);
  std::erase_if(inner.headers, [](const Header& h) { return h.key == kApprovedCommitHeader; });
  for (const std::string& c : d.approved) {
    inner.headers.push_back({std::string(kApprovedCommitHeader), c});
  }
  return inner;
}

}  // namespace

Result<std::unique_ptr<TaskStage>> TaskStage::create(std::unique_ptr<Stage> inner,
                                                     std::shared_ptr<const LiveTries> live,
                                                     std::shared_ptr<const RecordAuth> auth) {
  auto impl = std::make_unique<Impl>();
  impl->live = std::move(live);
  impl->auth = std::move(auth);
  impl->inner_info = inner->info();
  auto in = config::Contract::compile(impl->inner_info.input_schema,
                                      "the input schema of stage '" + impl->inner_info.name + "'");
  if (!in.ok()) return in.status();
  auto out = config::Contract::compile(
      impl->inner_info.output_schema, "the output schema of stage '" + impl->inner_info.name + "'");
  if (!out.ok()) return out.status();
  impl->input = std::move(*in);
  impl->output = std::move(*out);
  impl->inner = std::move(inner);
  return std::unique_ptr<TaskStage>(new TaskStage(std::move(impl)));
}

TaskStage::TaskStage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskStage::~TaskStage() = default;

StageInfo TaskStage::info() const {
  StageInfo i = impl_->inner_info;
  i.name = "task:" + impl_->inner_info.name;
  i.input_schema.clear();  // the dispatch record; the inner schema is checked on its params
  i.output_schema.clear();
  return i;
}

Status TaskStage::Impl::authenticate(const Event& event, StageContext& ctx) const {
  if (!auth) return Status();
  Status s = auth->verify(event.topic, event.key, event.payload, event.headers);
  if (s.ok()) return s;
  count_refused_record(event.topic);
  ctx.count("task_dispatch_refused");
  return Status::invalid_argument(
      "dispatch record refused, not run: " + s.message() +
      "; only the scheduler dispatches tasks (trigger a run or clear a task instead)");
}

StageResult TaskStage::process(const Event& event, StageContext& ctx) {
  // Before anything in it is believed: the run, the try, the params, where results go.
  if (Status s = impl_->authenticate(event, ctx); !s.ok()) {
    ctx.log_warn(s.message());
    return StageResult::permanent(s.message());  // dead-lettered with the reason
  }
  auto d = decode_dispatch(event.payload);
  if (!d.ok()) return StageResult::permanent(d.status().message());
  // A try the scheduler no longer runs (timed out, cancelled, cleared, finished, or a dispatch
  // redelivered after its task moved on): running it would be a second try beside the live one.
  if (!live(impl_->live.get(), *d)) {
    ctx.log_info("dispatch of a try that is no longer live; not run");
    return StageResult::success();
  }
  Status valid = impl_->input->validate(d->params);
  if (!valid.ok()) {
    emit_result(ctx, impl_->auth.get(), *d, false, "",
                "params violate the input schema: " + valid.message(), false);
    return StageResult::success();
  }
  Event inner = inner_event(event, *d);
  CapturingContext capture(&ctx, impl_->live.get(), &*d);
  StageResult r = StageResult::success();
  try {
    r = impl_->inner->process(inner, capture);
  } catch (const std::exception& e) {
    r = StageResult::retryable(std::string("stage threw: ") + e.what());
  }
  // Superseded while it ran (execution_timeout, cancel, clear): another try may be running or
  // done, so what this one produced must not reach the output topic beside it.
  if (!live(impl_->live.get(), *d)) {
    ctx.log_warn(
        "try superseded while it ran (execution_timeout, cancel or clear); its outputs "
        "and result are dropped");
    return StageResult::success();
  }
  switch (r.kind()) {
    case StageResult::Kind::kSuccess: {
      for (const Output& o : capture.outputs) {
        Status v = impl_->output->validate(o.payload);
        if (!v.ok()) {
          emit_result(ctx, impl_->auth.get(), *d, false, "",
                      "output violates the output schema: " + v.message(), false);
          return StageResult::success();
        }
        // A stage's output is data; on an internal topic it would be an order (factory/topic.h).
        if (is_internal_topic(o.topic)) {
          emit_result(ctx, impl_->auth.get(), *d, false, "",
                      internal_topic_refusal(o.topic, "a stage output to"), false);
          return StageResult::success();
        }
      }
      for (const Output& o : capture.outputs) {
        Output fwd = o;
        if (fwd.topic.empty()) fwd.topic = d->output_topic;
        if (!fwd.key) fwd.key = d->run_id;  // a task's outputs are keyed by its run
        if (!fwd.topic.empty()) ctx.emit(std::move(fwd));
      }
      emit_result(ctx, impl_->auth.get(), *d, true,
                  capture.outputs.empty() ? "" : capture.outputs.front().payload, "", false);
      break;
    }
    case StageResult::Kind::kRetryable:
      emit_result(ctx, impl_->auth.get(), *d, false, "", r.reason(), true);
      break;
    case StageResult::Kind::kPermanent:
      emit_result(ctx, impl_->auth.get(), *d, false, "", r.reason(), false);
      break;
    case StageResult::Kind::kRoute: {
      // The input goes where the stage sent it (e.g. human-review), as a plain binding does,
      // and the task fails without retry: a person takes it from there.
      Output routed{.payload = d->params, .key = d->run_id, .topic = r.route_topic()};
      routed.headers.push_back({"factory.route.reason", r.reason()});
      routed.headers.push_back({"factory.stage", impl_->inner_info.name});
      ctx.emit(std::move(routed));
      emit_result(ctx, impl_->auth.get(), *d, false, "",
                  "routed to " + r.route_topic() + ": " + r.reason(), false);
      break;
    }
  }
  return StageResult::success();
}

Stage::Recovery TaskStage::recover(const Event& event, StageContext& ctx) {
  // Not authentic: process() refuses it (counted and dead-lettered) without running anything.
  if (impl_->auth &&
      !impl_->auth->verify(event.topic, event.key, event.payload, event.headers).ok()) {
    return Recovery::kNotDone;
  }
  auto d = decode_dispatch(event.payload);
  if (!d.ok()) return Recovery::kNotDone;
  Event inner = inner_event(event, *d);
  // Not live: done, with nothing appended (process() would only skip it).
  if (!live(impl_->live.get(), *d)) return Recovery::kDone;
  CapturingContext capture(&ctx, impl_->live.get(), &*d);
  if (impl_->inner->recover(inner, capture) != Recovery::kDone) return Recovery::kNotDone;
  if (!live(impl_->live.get(), *d)) return Recovery::kDone;
  for (const Output& o : capture.outputs) {
    Output fwd = o;
    if (fwd.topic.empty()) fwd.topic = d->output_topic;
    if (!fwd.key) fwd.key = d->run_id;
    if (!fwd.topic.empty()) ctx.emit(std::move(fwd));
  }
  emit_result(ctx, impl_->auth.get(), *d, true,
              capture.outputs.empty() ? "" : capture.outputs.front().payload, "", false);
  return Recovery::kDone;
}

}  // namespace factory::scheduler
