--[[
meshctx cli_filter.lua: check sbatch/salloc/srun sizes with the meshctx CLI before submission.

Runs in the user's sbatch/salloc/srun process (not in slurmctld), so it may start a subprocess:
it runs `meshctx validate` with the sizes from the job's comment (the format `meshctx render slurm`
writes, see job_submit.lua) and the node and GPU counts of the command line, and refuses the job
with meshctx's full report (problems, hints, suggested sizes) when the topology is invalid.

The CLI is `meshctx` on PATH, or the command in MESHCTX_CLI (e.g. "/opt/meshctx/bin/meshctx").
When the CLI cannot be run the job is let through (logged): job_submit.lua still enforces the rules
inside slurmctld. A cli_filter can be bypassed by users, which is why both exist.
--]]

local KEYS = {
	{ "tp", "--tp" }, { "pp", "--pp" }, { "cp", "--cp" }, { "ep", "--ep" },
	{ "dp", "--dp" }, { "dp_replicate", "--dp-replicate" },
}

local function parse_comment(comment)
	if type(comment) ~= "string" then
		return nil
	end
	local spec = string.match(comment, "meshctx:(%S*)")
	if spec == nil then
		return nil
	end
	local fields = {}
	for key, value in string.gmatch(spec, "([%w_%-]+)=([^,]*)") do
		fields[key] = value
	end
	return fields
end

-- Only plain tokens go on the command line: nothing a shell would interpret.
local function safe(value)
	return type(value) == "string" and string.match(value, "^[%w_:%-]+$") ~= nil
end

function meshctx_command(options)
	local fields = parse_comment(options["comment"])
	if fields == nil then
		return nil
	end
	local nodes = options["nodes"]
	if nodes == nil then
		nodes = "1"
	end
	nodes = string.gsub(nodes, "-", ":")
	local nproc = fields.nproc
	if nproc == nil or nproc == "" then
		nproc = string.match(options["gpus-per-node"] or "", "(%d+)$")
	end
	if nproc == nil then
		return nil, "meshctx: give nproc=N in the comment or --gpus-per-node so the sizes can be checked"
	end
	local args = { "validate", "--strategy", fields.strategy or "fsdp2", "--nnodes", nodes, "--nproc-per-node", nproc }
	for _, pair in ipairs(KEYS) do
		local value = fields[pair[1]]
		if value ~= nil and value ~= "" then
			table.insert(args, pair[2])
			table.insert(args, value)
		end
	end
	for _, arg in ipairs(args) do
		if not safe(arg) then
			return nil, "meshctx: refusing the unsafe value " .. string.format("%q", arg) .. " in the job's sizes"
		end
	end
	local cli = os.getenv("MESHCTX_CLI") or "meshctx"
	return cli .. " " .. table.concat(args, " ")
end

function slurm_cli_pre_submit(options, pack_offset)
	local command, refusal = meshctx_command(options)
	if refusal ~= nil then
		slurm.log_error("%s", refusal)
		return slurm.ERROR
	end
	if command == nil then
		return slurm.SUCCESS
	end
	local pipe = io.popen(command .. " 2>&1; echo \"MESHCTX_EXIT=$?\"")
	if pipe == nil then
		slurm.log_info("meshctx: could not run %s; not checked", command)
		return slurm.SUCCESS
	end
	local output = pipe:read("*a")
	pipe:close()
	local status = tonumber(string.match(output, "MESHCTX_EXIT=(%d+)%s*$"))
	local report = string.gsub(output, "MESHCTX_EXIT=%d+%s*$", "")
	if status == 0 then
		return slurm.SUCCESS
	end
	if status == 1 or status == 2 then
		slurm.log_error("meshctx refused this job's sizes:\n%s", report)
		return slurm.ERROR
	end
	slurm.log_info("meshctx: %s exited with %s; not checked", command, tostring(status))
	return slurm.SUCCESS
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
