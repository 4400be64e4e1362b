//! The job file `caravan job init` writes: the same job as `nomad job init` (a "cache" group
//! running "redis"), but on the raw_exec driver so it runs without Docker.

/// The text of `example.nomad.hcl`.
pub fn init_example() -> &'static str {
    EXAMPLE
}

const EXAMPLE: &str = r#"# There can only be a single job definition per file. This job is named
# "example" so it will create a job with the ID and Name "example".

# The "job" block is the top-most configuration option in the job
# specification. A job is a declarative specification of tasks that Caravan
# (like Nomad) should run. Jobs have a globally unique name, one or many task
# groups, which are themselves collections of one or many tasks.
job "example" {
  # The "datacenters" parameter specifies the list of datacenters which should
  # be considered when placing this task. "*" means any datacenter.
  # datacenters = ["*"]

  # The "type" parameter controls the type of job, which impacts the scheduler's
  # decision on placement: "service", "batch", "system" or "sysbatch".
  # The default is "service".
  type = "service"

  # The "update" block specifies the update strategy of task groups: how many
  # allocations are replaced at a time and how they are judged healthy.
  update {
    # The "max_parallel" parameter specifies the maximum number of updates to
    # perform in parallel.
    max_parallel = 1

    # The "min_healthy_time" parameter specifies the minimum time the allocation
    # must be in the healthy state before it is marked as healthy and unblocks
    # further allocations from being updated.
    min_healthy_time = "10s"

    # The "healthy_deadline" parameter specifies the deadline in which the
    # allocation must be marked as healthy after which the allocation is
    # automatically transitioned to unhealthy.
    healthy_deadline = "3m"

    # The "progress_deadline" parameter specifies the deadline in which an
    # allocation must be marked as healthy.
    progress_deadline = "10m"

    # The "auto_revert" parameter specifies if the job should auto-revert to the
    # last stable job on deployment failure.
    auto_revert = false

    # The "canary" parameter specifies that changes to the job that would result
    # in destructive updates should create the specified number of canaries
    # without stopping any previous allocations.
    canary = 0
  }

  # The "group" block defines a series of tasks that should be co-located on
  # the same client (host). All tasks within a group will be placed on the
  # same host.
  group "cache" {
    # The "count" parameter specifies the number of the task groups that should
    # be running under this group. This value must be non-negative.
    count = 1

    # The "network" block specifies the network configuration for the
    # allocation, including requesting port bindings.
    network {
      # A dynamic port labelled "db"; inside the task it maps to 6379.
      port "db" {
        to = 6379
      }
    }

    # The "restart" block configures a group's behavior on task failure.
    restart {
      # The number of attempts to run the job within the specified interval.
      attempts = 2
      interval = "30m"

      # The "delay" parameter specifies the duration to wait before restarting
      # a task after it has failed.
      delay = "15s"

      # The "mode" parameter controls what happens when a task has restarted
      # "attempts" times within the interval: "fail" or "delay".
      mode = "fail"
    }

    # The "ephemeral_disk" block describes the ephemeral disk shared by the
    # tasks of the group, in MB.
    ephemeral_disk {
      size = 300
    }

    # The "task" block creates an individual unit of work, such as a Docker
    # container, web application, or batch processing.
    task "redis" {
      # The "driver" parameter specifies the task driver that should be used to
      # run the task. raw_exec runs a command directly on the host, so this
      # example runs without Docker.
      driver = "raw_exec"

      # The "config" block specifies the driver configuration, which is passed
      # directly to the driver to start the task. The details of configurations
      # are specific to each driver.
      config {
        command = "/bin/sh"
        args    = ["-c", "echo 'Ready to accept connections'; while true; do sleep 1; done"]
      }

      # The "resources" block describes the requirements a task needs to
      # execute. Resource requirements include memory, cpu, and more.
      resources {
        cpu    = 500 # 500 MHz
        memory = 256 # 256MB
      }

      # The "template" block instantiates an instance of a template renderer.
      # template {
      #   data          = "---\nkey: {{ key \"service/my-key\" }}"
      #   destination   = "local/file.yml"
      #   change_mode   = "signal"
      #   change_signal = "SIGHUP"
      # }

      # Controls the timeout between signalling a task it will be killed
      # and killing the task. If not set a default is used.
      # kill_timeout = "20s"
    }
  }
}
"#;
